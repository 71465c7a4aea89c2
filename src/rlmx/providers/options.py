"""The one check every client makes of its call options (:class:`CallOptions`).

A key outside :class:`CallOptions` (possible only from an untyped caller) is a
:class:`~rlmx.errors.ConfigError`, the same in every client. An option the backend cannot
honour is dropped, with one debug line, since callers must not rely on the optional ones.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from rlmx.errors import ConfigError
from rlmx.providers.base import CallOptions

logger = logging.getLogger(__name__)

CALL_OPTIONS: frozenset[str] = frozenset(CallOptions.__optional_keys__)


def honoured_options(
    spec: str, options: Mapping[str, object], *, honoured: Collection[str] = CALL_OPTIONS
) -> dict[str, Any]:
    """The options given a value (not None) that the backend honours; refuses unknown keys
    and logs the ones it drops."""
    unknown = sorted(set(options) - CALL_OPTIONS)
    if unknown:
        raise ConfigError(
            f"{spec}: unknown option(s) {', '.join(unknown)}; "
            f"the options of a call are {', '.join(sorted(CALL_OPTIONS))}"
        )
    given = {name: value for name, value in options.items() if value is not None}
    ignored = sorted(name for name in given if name not in honoured)
    if ignored:
        logger.debug("%s ignores options %s", spec, ignored)
    return {name: value for name, value in given.items() if name in honoured}
