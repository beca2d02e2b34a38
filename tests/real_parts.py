"""Real parts a test needs and may not find: PostgreSQL, the prepared model, an extra, a mount.

On a developer machine a missing part skips the test. Under CI (``CI`` is ``true`` or
``1``; ``.ci/run`` sets it and provides every part) a missing part fails the test with
the same message: a skip there would hide that a test of a real part never ran.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip (fail under CI) the current test, fixture or, at import, the whole module."""
    __tracebackhide__ = True  # reports point at the caller, not here
    if under_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(condition: object, reason: str) -> None:
    """Go on when ``condition`` holds; otherwise :func:`skip_or_fail` with ``reason``."""
    __tracebackhide__ = True
    if not condition:
        skip_or_fail(reason)


def require_module(name: str, reason: str) -> ModuleType:
    """``pytest.importorskip`` that fails under CI."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(name)
    except ImportError:
        skip_or_fail(reason)
