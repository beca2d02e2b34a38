"""Retrain until the gate promotes a candidate, each attempt on fresher data.

A rejected candidate leaves the drifted version serving while the drift that triggered the
run goes on. Waiting out the trigger's cooldown (an hour by default) leaves users on the
drifted version that long, and training again on the same data gives the same answer (the
data and the seed fix a run). So after a rejection the job waits until
``retry_new_examples`` more usable examples of the drifted traffic have arrived (up to
``data_wait_s``), then trains again from the serving version: at most ``max_attempts`` runs
per trigger, each recorded as its own run with its own reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from retrain.errors import RetrainError
from retrain.job import (
    JobContext,
    opted_in_tenants,
    run_retrain,
    usable_in_window,
    wait_for_drift_data,
)
from retrain.runs import RunRecord

log = logging.getLogger(__name__)


def retrain_with_retries(
    ctx: JobContext,
    adapter: str,
    reason: str,
    *,
    on_run: Callable[[RunRecord], None] = lambda _r: None,
    poll_s: float = 10.0,
) -> list[RunRecord]:
    """Run for ``adapter``, and again after each rejection while fresher data arrives;
    ``on_run`` sees each finished run as it ends. Returns every run, oldest first."""
    s = ctx.settings
    runs = [run_retrain(ctx, adapter, reason)]
    on_run(runs[-1])
    while runs[-1].outcome == "rejected" and len(runs) < s.max_attempts:
        last = runs[-1]
        used = (last.details or {}).get("drift_examples")
        if used is None:
            log.info(
                "not retrying run %s: it had no drift window to take fresher data from", last.id
            )
            break
        want = int(used) + s.retry_new_examples
        if not fresh_data_arrived(ctx, adapter, want, poll_s=poll_s):
            log.warning(
                "not retrying run %s: the drifted window did not reach %d usable examples "
                "within %.0f s",
                last.id,
                want,
                s.data_wait_s,
            )
            break
        retry_reason = f"{reason} (attempt {len(runs) + 1}: run {last.id} was rejected)"
        runs.append(run_retrain(ctx, adapter, retry_reason, min_drift_examples=want))
        on_run(runs[-1])
    return runs


def fresh_data_arrived(ctx: JobContext, adapter: str, want: int, *, poll_s: float) -> bool:
    """Whether the drifted window holds ``want`` usable examples (waiting up to
    ``data_wait_s`` for them)."""
    drift_start = ctx.drift_start(adapter)
    if drift_start is None:
        return False
    try:
        tenants = opted_in_tenants(ctx, adapter)
    except RetrainError as exc:
        log.warning("not retrying: %s", exc.message)
        return False
    records = wait_for_drift_data(ctx, adapter, drift_start, tenants, want=want, poll_s=poll_s)
    return usable_in_window(records, drift_start) >= want
