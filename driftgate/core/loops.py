"""Background loops that survive any exception and export when they last succeeded.

Every service's periodic work (state refresh, heartbeats, replica health, retention,
embeddings, the rollout controller) runs through :func:`run_forever`: one step, then a
pause, forever. A step that raises is logged (with its traceback unless the error is
one the loop expects, such as a database that is down), counted, and the loop goes on
after a pause; only cancellation ends it. Each service exports, on its own registry::

    driftgate_loop_last_success_timestamp_seconds{loop}   gauge (Unix time)
    driftgate_loop_interval_seconds{loop}                 gauge (how often it should succeed)
    driftgate_loop_failures_total{loop}                   counter

and the alert ``DriftgateLoopStalled`` (grafana/alerts) fires when a loop has not
succeeded for many of its intervals. A loop's start counts as a success, so one that
never succeeds alerts too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

LAST_SUCCESS = "driftgate_loop_last_success_timestamp_seconds"
INTERVAL = "driftgate_loop_interval_seconds"
FAILURES = "driftgate_loop_failures"


class LoopMetrics:
    """The loop metrics of one service, on its registry (create one per registry)."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.last_success = Gauge(
            LAST_SUCCESS,
            "When the background loop last completed a step (Unix seconds).",
            ["loop"],
            registry=registry,
        )
        self.interval = Gauge(
            INTERVAL,
            "How often the background loop completes a step when healthy.",
            ["loop"],
            registry=registry,
        )
        self.failures = Counter(
            FAILURES,
            "Steps of the background loop that raised.",
            ["loop"],
            registry=registry,
        )

    def started(self, loop: str, period_s: float) -> None:
        self.interval.labels(loop).set(period_s)
        self.failures.labels(loop)
        self.succeeded(loop)

    def succeeded(self, loop: str) -> None:
        self.last_success.labels(loop).set(self.clock())

    def failed(self, loop: str) -> None:
        self.failures.labels(loop).inc()


async def run_forever(
    name: str,
    step: Callable[[], Awaitable[object]],
    interval_s: float,
    *,
    metrics: LoopMetrics | None = None,
    expected: tuple[type[BaseException], ...] = (),
    delay_first: bool = False,
    period_s: float | None = None,
    error_delay_s: float = 1.0,
) -> None:
    """Run ``step`` every ``interval_s`` seconds until cancelled, whatever it raises.

    ``expected``: errors logged as one warning line (no traceback); any other exception
    is logged with its traceback. Both count as failures and leave the last-success
    time alone. ``delay_first``: pause before the first step. ``period_s``: how often
    a healthy loop succeeds, for the alert (default ``interval_s``; a loop whose step
    waits for work passes its longest wait). After a failure the pause is at least
    ``error_delay_s``, so a loop with no interval does not spin on a broken step.
    """
    if metrics is not None:
        metrics.started(name, period_s if period_s is not None else interval_s)
    if delay_first:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except expected as exc:
            log.warning("background loop %s: step failed (it keeps going): %s", name, exc)
        # The one place a blanket handler is right: a background loop must outlive any
        # bug in one step; the traceback is logged and the failure counted.
        except Exception:
            log.exception("background loop %s: step failed (it keeps going)", name)
        else:
            if metrics is not None:
                metrics.succeeded(name)
            await asyncio.sleep(interval_s)
            continue
        if metrics is not None:
            metrics.failed(name)
        await asyncio.sleep(max(interval_s, error_delay_s))
