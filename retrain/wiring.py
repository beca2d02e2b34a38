"""The real edges of a retrain run: drift store, state store, vLLM, rollout hand-off.

:func:`build_context` wires a :class:`~retrain.job.JobContext` from settings; the
functions here are its edges, each usable on its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection

from driftgate.core.credentials import secret_value
from driftgate.core.events import FeedbackEvent
from retrain.dataset import TrafficRecord
from retrain.evaluate import VllmEngine
from retrain.job import Candidate, JobContext
from retrain.registry import Registry
from retrain.runs import RunStore
from retrain.settings import RetrainSettings

log = logging.getLogger(__name__)

#: Alarms at most this long before the latest trigger count as the drifted window.
DRIFT_LOOKBACK_S = 24 * 3600.0


def read_traffic(
    state_url: str, adapter: str, tenants: Collection[str] | None = None
) -> list[TrafficRecord]:
    """Requests of ``adapter`` with the feedback their own tenant gave, from the drift
    service's store; only the requests of ``tenants`` (``None``: every tenant's)."""
    from drift.store import DriftStore, LabeledExample

    store = DriftStore.from_url(state_url)
    try:
        store.create_all()
        rows = store.requests_with_feedback(adapter, tenants=tenants)
    finally:
        store.close()
    # By (tenant, request id): a request id is the gateway's, but two tenants' rows under
    # one id must never merge into one example.
    grouped: dict[tuple[str, str], list[LabeledExample]] = defaultdict(list)
    for r in rows:
        grouped[(r.tenant, r.request_id)].append(r)
    out = []
    for (tenant, rid), items in grouped.items():
        first = items[0]
        fbs = tuple(
            FeedbackEvent(
                request_id=rid,
                tenant=tenant,
                ts=i.feedback_ts,
                score=i.score,
                label=i.label,
                correction=i.correction,
            )
            for i in items
            if i.score is not None or i.label is not None or i.correction is not None
        )
        out.append(
            TrafficRecord(
                request_id=rid,
                ts=first.ts,
                prompt_text=first.prompt,
                completion_text=first.completion,
                tenant=tenant,
                endpoint=first.endpoint,
                status_code=first.status_code,
                finish_reason=first.finish_reason,
                feedback=fbs,
                served=first.served,
                feedback_source=items[-1].source,
            )
        )
    return out


def read_anchors(
    state_url: str,
    adapter: str,
    version: int | None,
    before: float,
    tenants: Collection[str],
    *,
    min_mean_logprob: float,
) -> list[TrafficRecord]:
    """Unrated requests of ``tenants`` that ``version`` answered with a mean token logprob
    of at least ``min_mean_logprob`` before ``before`` (the job passes the drift's start
    less ``anchor_margin_s``): its anchor candidates, with their tenant and request id."""
    from drift.store import DriftStore

    store = DriftStore.from_url(state_url)
    try:
        store.create_all()
        rows = store.confident_answers(
            adapter, version, before=before, min_mean_logprob=min_mean_logprob, tenants=tenants
        )
    finally:
        store.close()
    return [
        TrafficRecord(
            request_id=r.request_id,
            ts=r.ts,
            prompt_text=r.prompt,
            completion_text=r.completion,
            tenant=r.tenant,
            finish_reason=r.finish_reason,
            served=r.served,
            mean_logprob=r.mean_logprob,
        )
        for r in rows
    ]


def drift_start(
    state_url: str, adapter: str, signals: Collection[str] | None = None
) -> float | None:
    """Start of the drifted window that the latest started trigger acted on.

    The earliest alarm of the triggered version on a signal that can trigger a retrain
    (``signals``; default: the drift service's ``trigger_signals``), after the trigger
    before it and at most a day back. Alarms on other signals (latency moves with load)
    or other versions do not say when the *task* drifted, so they do not count.
    """
    from drift.settings import DriftSettings
    from drift.store import DriftStore

    wanted = set(signals if signals is not None else DriftSettings().trigger_signals)
    store = DriftStore.from_url(state_url)
    try:
        store.create_all()
        started = [t for t in store.triggers(adapter, limit=100) if t["outcome"] == "started"]
        alarms = store.alarms(adapter, limit=1000)
    finally:
        store.close()
    if not started:
        return None
    end, version = float(started[0]["ts"]), int(started[0]["version"])
    since = end - DRIFT_LOOKBACK_S
    if len(started) > 1:
        since = max(since, float(started[1]["ts"]))
    window = [
        float(a["ts"])
        for a in alarms
        if a["signal"] in wanted and int(a["version"]) == version and since < float(a["ts"]) <= end
    ]
    return min(window) if window else end


def training_tenants(state_url: str, adapter: str) -> tuple[str, ...]:
    """The tenants opted in to train ``adapter`` (the gateway's admin API sets them)."""
    from driftgate.core.state.store import StateStore

    store = StateStore(state_url)
    try:
        store.create_all()
        return store.training_tenants(adapter)
    finally:
        store.dispose()


def serving_versions(state_url: str, adapter: str) -> tuple[int | None, list[int]]:
    """(the version with the largest route weight, every version number recorded)."""
    from driftgate.core.state.store import StateStore

    store = StateStore(state_url)
    try:
        store.create_all()
        route = store.get_routes().get(adapter, {})
        versions = [v.version for v in store.list_versions(adapter)]
    finally:
        store.dispose()
    serving = max(route, key=lambda v: (route[v], v)) if route else None
    return serving, versions


def adapter_known(state_url: str, registry: Registry, adapter: str) -> bool:
    if registry.adapter_dir(adapter).is_dir():
        return True
    from drift.store import DriftStore

    if serving_versions(state_url, adapter)[1]:
        return True
    store = DriftStore.from_url(state_url)
    try:
        store.create_all()
        return any(a == adapter for a, _ in store.versions())
    finally:
        store.close()


def hand_off(candidate: Candidate, *, state_url: str, approval: str, canary_weight: float) -> None:
    """Give a passing candidate to the rollout (issue "Hot swap"): it records a rollout of
    the registry directory, approved at once when ``approval`` is ``auto``."""
    from rollout.submit import submit_candidate

    d = candidate.decision
    rollout = submit_candidate(
        state_url,
        candidate.adapter,
        str(candidate.path),
        approval="auto" if approval == "auto" else "manual",
        canary_weight=canary_weight,
        meta={
            "version": candidate.version,
            "run_id": candidate.run_id,
            "serving_version": candidate.serving_version,
            "candidate_score": d.candidate.heldout.task,
            "serving_score": d.serving.heldout.task if d.serving else None,
        },
    )
    log.info("handed %s@%d to the rollout (%s)", candidate.adapter, candidate.version, rollout)


def record_rejected(candidate: Candidate, *, state_url: str) -> None:
    """Record a rejected candidate in the state store as ``failed``: its number is never
    reused and it can never be routed (routes accept only ``ready`` versions)."""
    from driftgate.core.state.models import VersionState
    from driftgate.core.state.store import StateStore

    store = StateStore(state_url)
    try:
        store.create_all()
        store.create_version(
            candidate.adapter,
            str(candidate.path),
            version=candidate.version,
            meta={"run_id": candidate.run_id, "rejected": True},
        )
        store.set_version_state(
            candidate.adapter,
            candidate.version,
            VersionState.FAILED,
            error="rejected by the evaluation gate: " + "; ".join(candidate.decision.reasons),
        )
    finally:
        store.dispose()


def build_context(settings: RetrainSettings) -> JobContext:
    url = settings.state_url
    registry = Registry(settings.registry_dir)
    runs = RunStore(url)
    runs.create_all()
    engine = VllmEngine(
        settings.engine_url,
        max_tokens=settings.eval_max_tokens,
        concurrency=settings.eval_concurrency,
        timeout_s=settings.eval_timeout_s,
        api_key=secret_value(settings.engine_api_key),
    )
    return JobContext(
        settings=settings,
        registry=registry,
        runs=runs,
        source=lambda a, tenants: read_traffic(url, a, tenants),
        anchors=lambda a, version, before, tenants: read_anchors(
            url, a, version, before, tenants, min_mean_logprob=settings.anchor_min_logprob
        ),
        tenants=lambda a: training_tenants(url, a),
        serving=lambda a: serving_versions(url, a),
        known=lambda a: adapter_known(url, registry, a),
        generator=engine,
        hand_off=lambda c: hand_off(
            c, state_url=url, approval=settings.approval, canary_weight=settings.canary_weight
        ),
        reject=lambda c: record_rejected(c, state_url=url),
        drift_start=lambda a: drift_start(url, a),
    )
