"""Garbage-collector settings for a long-running service process."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def tuned_for_service(gen0_threshold: int) -> Iterator[None]:
    """While serving: start-up objects frozen, young collections run less often.

    What is imported and built at start-up lives as long as the process; frozen, it is
    no longer re-scanned by every full collection. A batch of 1,000 events allocates
    thousands of short-lived containers, and at CPython's default threshold (700) the
    collector runs every ~100 events although reference counting frees those objects
    anyway. ``gen0_threshold`` 0 keeps the threshold (the freeze still applies). On exit
    the objects are unfrozen (so interpreter shutdown can free them) and the thresholds
    restored.
    """
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    if gen0_threshold > 0:
        gc.set_threshold(gen0_threshold, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
