"""Hand-made SVG charts for the report: no plotting library, no scripts, no external files."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

# A fixed palette; the report gives every method its own slot (see ``report.method_colours``).
COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#17becf",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 30, 46

Series = Mapping[str, Sequence[tuple[float, float]]]
Colours = Mapping[str, str]


def _colour(colours: Colours | None, name: str, index: int) -> str:
    """The series' own colour if one is given, else the palette slot of its position."""
    if colours and name in colours:
        return colours[name]
    return COLOURS[index % len(COLOURS)]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return float(step * exponent)
    return float(10 * exponent)


def _fmt(value: float) -> str:
    for unit, size in (("M", 1_000_000), ("K", 1_000)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]


def line_chart(
    title: str,
    series: Series,
    *,
    x_label: str,
    y_label: str,
    y_max: float | None = None,
    x_ticks: Sequence[tuple[float, str]] = (),
    colours: Colours | None = None,
) -> str:
    """Lines over a log2 x axis (context length), one per series, with a legend.

    ``colours`` maps a series name to its colour, so one name can keep one colour across
    charts that show different subsets of series."""
    points = [p for values in series.values() for p in values]
    if not points:
        return ""
    xs = [math.log2(max(1.0, x)) for x, _ in points]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi - x_lo < 1e-9:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    top = y_max if y_max is not None else _nice_max(max(y for _, y in points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (math.log2(max(1.0, x)) - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y / top) * plot_h

    out = _frame(title, x_label, y_label)
    for i in range(5):
        value = top * i / 4
        y = sy(value)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(value)}</text>')
    ticks = x_ticks or sorted({(x, _fmt(x)) for x, _ in points})
    for x, label in ticks:
        px = sx(x)
        out.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{px:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
    )
    for index, (name, values) in enumerate(series.items()):
        colour = _colour(colours, name, index)
        tag = f'data-series="{escape(name)}"'
        ordered = sorted(values)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ordered)
        if len(ordered) > 1:
            out.append(
                f'<polyline {tag} points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, y in ordered:
            out.append(
                f'<circle {tag} cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(name)}: {_fmt(x)} tokens, {y:.3g}</title></circle>"
            )
        ly = TOP + 14 + index * 18
        lx = LEFT + plot_w + 14
        out.append(
            f'<line {tag} x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="3"/>'
            f'<text x="{lx + 24}" y="{ly}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    title: str, bars: Mapping[str, float], *, y_label: str, colours: Colours | None = None
) -> str:
    """One bar per label (e.g. total cost or tokens per method), in the order of ``bars``;
    ``colours`` maps a label to its colour, as in :func:`line_chart`."""
    if not bars:
        return ""
    top = _nice_max(max(bars.values()))
    plot_w, plot_h = WIDTH - LEFT - 40, HEIGHT - TOP - BOTTOM
    out = _frame(title, "", y_label)
    step = plot_w / len(bars)
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(top * i / 4)}</text>'
        )
    for index, (label, value) in enumerate(bars.items()):
        h = plot_h * value / top
        x = LEFT + index * step + step * 0.15
        out.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{_colour(colours, label, index)}" '
            f'data-series="{escape(label)}">'
            f"<title>{escape(label)}: {value:.4g}</title></rect>"
            f'<text x="{x + step * 0.35:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
