"""The web viewer in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
the runs list, one run as a tree, a live run appearing and completing, cancelling, the
new-run form and the token prompt."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import repl
from .test_server_support import Served, make_config, serve

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, expect, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(make_config(tmp_path))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    assert errors == [], errors


def tree_script(served: Served, latency_s: float) -> str:
    """Three root iterations: a search, a batched llm_query and a nested run, then FINAL."""
    return served.script(
        "tree.json",
        repl(
            "hits = [i for i in range(len(context)) if context.startswith('code', i)]\nprint(hits)"
        ),
        repl("parts = llm_query_batched(['SUB one', 'SUB two'])\nprint(parts)")
        + "\n"
        + repl("inner = rlm_query('find the code')\nprint(inner)"),
        repl("FINAL('ZETA-42')"),  # the nested run's reply
        repl("FINAL(inner)"),
        rules={"SUB": "sub answer"},
        latency_s=latency_s,
    )


def test_a_live_run_appears_and_completes_on_the_page(served: Served, page: Page) -> None:
    page.goto(served.url + "/#/")
    expect(page.get_by_text("No runs yet")).to_be_visible()
    spec = tree_script(served, latency_s=0.6)
    with served.client() as client:
        body = {
            "query": "What is the vault code?",
            "text": "the code is ZETA-42",
            "model": spec,
            "limits": {"max_depth": 2},
        }
        run_id = client.post("/v1/runs", json=body).json()["id"]
    row = page.locator(f'[data-testid=run-row][data-run-id="{run_id}"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("run-status")).to_have_text(re.compile("running|queued"))
    row.click()
    expect(page).to_have_url(re.compile(f"#/runs/{run_id}$"))
    status = page.locator("h1 + span [data-testid=run-status]")
    # The first iteration shows up while the run is still going.
    expect(page.locator("[data-testid=iteration]").first).to_be_visible()
    expect(status).to_have_text("running")
    expect(status).to_have_text("completed", timeout=20_000)
    expect(page.get_by_test_id("final-answer")).to_contain_text("ZETA-42")
    expect(
        page.locator("[data-testid=tree] > .run > .iterations > [data-testid=iteration]")
    ).to_have_count(3)
    nested = page.locator('[data-testid=nested-run][data-depth="1"]')
    expect(nested).to_have_count(1)
    expect(nested.locator("[data-testid=iteration]")).to_have_count(1)
    expect(page.locator("[data-testid=sub-call]")).to_have_count(2)
    expect(page.locator(".tok-repl").first).to_be_visible()  # highlighted REPL names
    expect(page.get_by_test_id("stat-iterations")).to_have_text("3")
    expect(page.get_by_test_id("stat-sub-calls")).to_have_text("3")
    expect(page.get_by_test_id("stat-tokens")).not_to_have_text(re.compile("^(0|–)$"))
    # A sub-call opens to its prompt and response.
    call = page.locator("[data-testid=sub-call]").first
    call.locator("summary").click()
    expect(call).to_contain_text("SUB one")
    expect(call).to_contain_text("sub answer")
    page.get_by_role("link", name="← Runs").click()
    row = page.locator(f'[data-testid=run-row][data-run-id="{run_id}"]')
    expect(row.get_by_test_id("run-status")).to_have_text("completed")
    expect(row.get_by_test_id("run-tokens")).not_to_have_text("0")


def test_a_finished_run_replays_as_the_same_tree(served: Served, page: Page) -> None:
    spec = tree_script(served, latency_s=0.0)
    with served.client() as client:
        body = {
            "query": "q",
            "text": "the code is ZETA-42",
            "model": spec,
            "limits": {"max_depth": 2},
        }
        run_id = client.post("/v1/runs", json=body).json()["id"]
        client.get(f"/v1/runs/{run_id}/events")  # replay to the end: the run is over
    page.goto(f"{served.url}/#/runs/{run_id}")
    expect(page.locator("h1 + span [data-testid=run-status]")).to_have_text("completed")
    expect(page.locator("[data-testid=cell]")).to_have_count(5)
    expect(page.locator('[data-testid=cell][data-state="done"]')).to_have_count(5)
    page.get_by_role("button", name="Collapse all").click()
    expect(page.locator("[data-testid=cell]").first).to_be_hidden()
    page.get_by_role("button", name="Expand all").click()
    expect(page.locator("[data-testid=cell]").first).to_be_visible()
    page.get_by_text("Raw events").click()
    expect(page.locator(".raw-text")).to_contain_text('"type":"run_finished"')


def test_cancel_from_the_page(served: Served, page: Page) -> None:
    spec = served.script("slow.json", repl("print(1)"), latency_s=30)
    with served.client() as client:
        run_id = client.post("/v1/runs", json={"query": "q", "text": "t", "model": spec}).json()[
            "id"
        ]
    page.goto(f"{served.url}/#/runs/{run_id}")
    page.get_by_test_id("cancel").click()
    expect(page.locator("h1 + span [data-testid=run-status]")).to_have_text("cancelled")
    expect(page.get_by_test_id("run-error")).to_contain_text("cancelled by DELETE")


def test_the_new_run_form_starts_a_run(served: Served, page: Page) -> None:
    spec = served.script("form.json", repl("print(context)"), repl("FINAL('from the form')"))
    page.goto(served.url + "/#/new")
    page.locator("textarea[name=query]").fill("What does it say?")
    page.locator("textarea[name=text]").fill("pasted context")
    page.locator("input[name=model]").fill(spec)
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile("#/runs/[0-9a-f]{12}$"))
    expect(page.get_by_test_id("final-answer")).to_contain_text("from the form")
    # A bad spec is reported on the form, not lost.
    page.goto(served.url + "/#/new")
    page.locator("textarea[name=query]").fill("q")
    page.locator("textarea[name=text]").fill("t")
    page.locator("input[name=model]").fill("nope:x")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator(".error-text")).to_contain_text("unknown provider")


def test_a_token_is_asked_for_and_kept(tmp_path: Path, page: Page) -> None:
    for served in serve(make_config(tmp_path, token="s3cret")):
        page.goto(served.url + "/#/")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        page.locator("#token-input").fill("s3cret")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("No runs yet")).to_be_visible()
        page.reload()
        expect(page.get_by_text("No runs yet")).to_be_visible()  # the token was kept
