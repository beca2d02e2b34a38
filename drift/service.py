"""The drift service's core: ingest -> store -> detectors -> alarms -> trigger.

The FastAPI routes (:mod:`drift.app`) only parse and call this. Store calls
run in worker threads; detectors are updated in memory after the commit, and
only for events that were new (a retried batch changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

from drift.batch import request_rows, signal_columns
from drift.embeddings import EMBEDDING_SIGNAL, EmbeddingMonitor
from drift.features import RequestFeatures, feedback_signals
from drift.metrics import DriftMetrics, VersionGauges
from drift.monitor import Alarm, MonitorConfig
from drift.review_queue import ReviewQueue
from drift.settings import DriftSettings
from drift.store import BASE_VERSION, FEEDBACK_CLIENT, DriftStore, FeedbackWrite, Reference
from drift.trigger import TriggerManager
from drift.version_window import feedback_rows_between, request_rows_between
from drift.versions import DriftMonitor, VersionMonitor
from driftgate.core.adapters import BASE_LABEL
from driftgate.core.errors import InvalidRequest, NotFound, Unavailable
from driftgate.core.events import EventBatch, FeedbackEvent, RequestEvent

log = logging.getLogger(__name__)

#: request id -> (adapter, version) kept in memory for feedback joins.
_JOIN_CACHE = 200_000
#: Request ids with feedback but no request event yet, tracked in memory up to this many;
#: beyond it every batch looks its request ids up in the store.
_MAX_ORPHANS = 100_000


def monitor_config(settings: DriftSettings) -> MonitorConfig:
    return MonitorConfig(
        reference_size=settings.reference_size,
        window_size=settings.window_size,
        test_every=settings.test_every,
        cusum_k=settings.cusum_k,
        cusum_h=settings.cusum_h,
        adwin_delta=settings.adwin_delta,
        rate_ratio=settings.rate_ratio,
        rate_h=settings.rate_h,
        confirm_alpha=settings.confirm_alpha,
        confirm_patience=settings.confirm_patience,
    )


def _version_label(version: int) -> str:
    return BASE_LABEL if version == BASE_VERSION else str(version)


def _features_of_row(row: dict[str, Any]) -> RequestFeatures:
    return RequestFeatures(
        ok=row["status_code"] < 400,
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        finish_reason=row["finish_reason"],
        empty=bool(row["empty"]),
        refusal=bool(row["refusal"]),
        mean_logprob=row["mean_logprob"],
        first_token_margin=row["first_token_margin"],
    )


def feedback_row(e: FeedbackEvent, source: str = FEEDBACK_CLIENT) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "request_id": e.request_id,
        "ts": e.ts,
        "tenant": e.tenant,
        "score": e.score,
        "label": e.label,
        "correction": e.correction,
        "negative": e.is_negative,
        "source": source,
    }


class DriftService:
    """State of one running drift service (built in the app's lifespan)."""

    def __init__(
        self,
        settings: DriftSettings,
        store: DriftStore,
        metrics: DriftMetrics,
        trigger: TriggerManager,
        embeddings: EmbeddingMonitor | None = None,
        review: ReviewQueue | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.trigger = trigger
        self.embeddings = embeddings
        self.review = review
        #: Review queue fills running in worker threads, one per version at most.
        self._review_fills: dict[tuple[str, int], asyncio.Task[int]] = {}
        self.monitor = DriftMonitor(monitor_config(settings))
        self._lock = asyncio.Lock()
        self._joins: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._gauges: dict[tuple[str, int], VersionGauges] = {}
        self._orphans: set[str] = set()
        self._orphans_overflow = False

    # --- rows -------------------------------------------------------------------------

    def _remember(self, request_id: str, key: tuple[str, int]) -> None:
        joins = self._joins
        joins[request_id] = key
        if len(joins) > _JOIN_CACHE:
            joins.popitem(last=False)

    def _remember_many(self, request_ids: Sequence[str], keys: Sequence[tuple[str, int]]) -> None:
        joins = self._joins
        joins.update(zip(request_ids, keys, strict=True))
        while len(joins) > _JOIN_CACHE:
            joins.popitem(last=False)

    # --- ingest -----------------------------------------------------------------------

    async def ingest(self, batch: EventBatch) -> tuple[int, int]:
        """Store new events of a batch and feed them to the detectors; (accepted, duplicates)."""
        events = batch.events
        rows, keys, empties, refusals = request_rows(events, self.settings.text_policy_for)
        async with self._lock:
            new_ids = await asyncio.to_thread(self.store.insert_requests, rows)
            fresh: Sequence[RequestEvent] = events
            if len(new_ids) < len(events):  # a retry, or a duplicate inside the batch
                keep = []
                for i, e in enumerate(events):
                    if e.event_id in new_ids:
                        new_ids.discard(e.event_id)  # a duplicate inside one batch counts once
                        keep.append(i)
                fresh = [events[i] for i in keep]
                keys = [keys[i] for i in keep]
                empties = [empties[i] for i in keep]
                refusals = [refusals[i] for i in keep]
            early: list[dict[str, Any]] = []
            if self._orphans or self._orphans_overflow:
                waiting = [
                    e.request_id
                    for e in fresh
                    if self._orphans_overflow or e.request_id in self._orphans
                ]
                if waiting:
                    early = await asyncio.to_thread(self.store.feedback_for_requests, waiting)
                    self._orphans.difference_update(waiting)
            # Only routed requests are remembered: feedback on a pinned one is looked up.
            self._remember_many(
                [e.request_id for e in fresh if not e.pinned],
                [k for e, k in zip(fresh, keys, strict=True) if not e.pinned],
            )
            columns = signal_columns(fresh, keys, empties, refusals)
            for key in set(keys):  # a version seen only failing still shows in the status
                columns.setdefault(key, {})
            if early:
                by_request = {
                    (e.request_id, e.tenant): k
                    for e, k in zip(fresh, keys, strict=True)
                    if not e.pinned
                }
                for fb in early:
                    owner = by_request.get((fb["request_id"], fb["tenant"]))
                    # Another tenant's vote on this request is never counted; a vote on a
                    # pinned request is stored but not watched.
                    if owner is None:
                        continue
                    cols = columns.setdefault(owner, {})
                    self._gauges_of(*owner).count_feedback(bool(fb["negative"]))
                    for name, value in feedback_signals(fb["score"], bool(fb["negative"])):
                        cols.setdefault(name, []).append(value)
            alarms: list[Alarm] = []
            for (adapter, version), cols in columns.items():
                alarms.extend(self.monitor.observe_many(adapter, version, cols))
            await self._after_observe(alarms, set(columns))
        accepted = len(fresh)
        self.metrics.ingested.labels("request").inc(accepted)
        if len(events) > accepted:
            self.metrics.duplicates.inc(len(events) - accepted)
        if self.embeddings is not None:
            for e, (adapter, version) in zip(fresh, keys, strict=True):
                if e.prompt_text and e.status_code < 400 and not e.pinned:
                    self.embeddings.offer(adapter, version, e.prompt_text)
        return accepted, len(events) - accepted

    async def feedback(self, event: FeedbackEvent) -> FeedbackWrite:
        """Commit one feedback event as its tenant's vote; durable when this returns.

        404 (nothing stored) when the request is stored under another tenant. Only a
        request's first vote feeds the detectors: a replaced vote is stored, but
        rating one answer again and again must not move a drift signal.
        """
        row = feedback_row(event)
        async with self._lock:
            outcome = await asyncio.to_thread(self.store.write_feedback, row)
            if outcome is FeedbackWrite.FOREIGN:
                self.metrics.rejected.labels("foreign_request").inc()
                raise NotFound("no request with this id", param="request_id", code="not_found")
            if outcome is FeedbackWrite.DUPLICATE:
                self.metrics.duplicates.inc()
                return outcome
            self.metrics.ingested.labels("feedback").inc()
            if outcome is FeedbackWrite.REPLACED:
                return outcome
            key = self._joins.get(event.request_id)
            if key is None:
                found = await asyncio.to_thread(self.store.lookup_requests, [event.request_id])
                stored = found.get(event.request_id)
                if stored is not None and stored.pinned:
                    return outcome  # stored as a vote; the detectors watch routed traffic
                key = None if stored is None else (stored.adapter, stored.version)
            if key is None:  # joined when the request event arrives
                self._add_orphan(event.request_id)
            else:
                self._gauges_of(*key).count_feedback(event.is_negative)
                pairs = feedback_signals(event.score, event.is_negative)
                alarms = self.monitor.observe(key[0], key[1], pairs)
                await self._after_observe(alarms, {key})
        return outcome

    def _add_orphan(self, request_id: str) -> None:
        if len(self._orphans) >= _MAX_ORPHANS:
            self._orphans_overflow = True
        else:
            self._orphans.add(request_id)

    async def embedding_step(self) -> int:
        """One step of the embedding loop: embed a batch, record the test alarms it raised
        (and retrain on them as on any confirmed alarm); returns the prompts embedded."""
        embeddings = self.embeddings
        if embeddings is None:
            return 0
        embedded = await embeddings.wait_and_step()
        alarms = embeddings.take_alarms()
        if alarms:
            async with self._lock:
                await self._handle_alarms(alarms)
        return embedded

    # --- alarms, references, gauges ---------------------------------------------------

    async def _after_observe(self, alarms: list[Alarm], touched: set[tuple[str, int]]) -> None:
        completed = self.monitor.take_completed()
        if completed:
            refs = [
                Reference(a, v, mon.signal, mon.source, time.time(), list(mon.reference))
                for a, v, mon in completed
            ]
            await asyncio.to_thread(self._save_references, refs)
        for key in touched:
            self._gauges_of(*key)  # the version's counters exist before its first alarm
        if alarms:
            await self._handle_alarms(alarms)
        for key in touched:
            self._update_gauges(self.monitor.version(*key))

    def _save_references(self, refs: Sequence[Reference]) -> None:
        self.store.save_references(refs)

    async def _handle_alarms(self, alarms: list[Alarm]) -> None:
        rows = []
        for a in alarms:
            version = _version_label(a.version)
            self.metrics.alarms.labels(a.adapter, version, a.signal, a.detector).inc()
            rows.append(
                {
                    "ts": a.ts,
                    "adapter": a.adapter,
                    "version": a.version,
                    "signal": a.signal,
                    "detector": a.detector,
                    "confirmed": a.confirmed,
                    "score": a.score,
                    "p_value": a.p_value,
                    "detail": _json(a.detail),
                }
            )
        await asyncio.to_thread(self.store.record_alarms, rows)
        for a in alarms:
            if not a.confirmed:
                continue
            version = _version_label(a.version)
            self.metrics.confirmed.labels(a.adapter, version).inc()
            reason = f"confirmed {a.signal} drift on {a.adapter}@{version} by {a.detector}" + (
                f" (p={a.p_value:.2g})" if a.p_value is not None else ""
            )
            log.warning("%s", reason)
            if a.signal not in self.settings.trigger_signals:
                continue  # alerted on, but retraining cannot fix it (e.g. latency)
            self._fill_review_queue(a.adapter, a.version)
            decision = await self.trigger.on_confirmed(a.adapter, a.version, a.signal, reason)
            log.info("retrain trigger %s: %s (%s)", a.adapter, decision.outcome, decision.detail)

    def _fill_review_queue(self, adapter: str, version: int) -> None:
        """Start filling the version's review queue in a worker thread (labels are training
        data, so only drift a retrain can fix spends them); never waited for here."""
        if self.review is None or self.review.budget <= 0:
            return
        running = self._review_fills.get((adapter, version))
        if running is not None and not running.done():
            return
        task = asyncio.create_task(asyncio.to_thread(self.review.fill, adapter, version))
        self._review_fills[(adapter, version)] = task
        task.add_done_callback(_log_fill_failure)

    async def label_review(
        self, item_id: int, tenant: str | None, label: str | None, correction: str | None
    ) -> dict[str, Any]:
        """Store a reviewer's answer to one item; when it closed its version's round and
        budget is left, queue the next round (from the newest requests)."""
        review = self.review
        if review is None:
            raise Unavailable("the review queue is off", code="review_off")
        stored = await asyncio.to_thread(review.label, item_id, tenant, label, correction)
        item = await asyncio.to_thread(review.store.reviews.get, item_id)
        if item is not None and await asyncio.to_thread(
            review.round_answered, item["adapter"], item["version"]
        ):
            self._fill_review_queue(item["adapter"], item["version"])
        return stored

    async def review_fills_done(self) -> None:
        """Wait for the review queue fills started so far (tests, shutdown)."""
        await asyncio.gather(*self._review_fills.values(), return_exceptions=True)

    def _gauges_of(self, adapter: str, version: int) -> VersionGauges:
        gauges = self._gauges.get((adapter, version))
        if gauges is None:
            gauges = self._gauges[(adapter, version)] = VersionGauges(
                self.metrics, adapter, _version_label(version)
            )
        return gauges

    def _update_gauges(self, vm: VersionMonitor) -> None:
        self._gauges_of(vm.adapter, vm.version).update(vm)

    # --- restart ----------------------------------------------------------------------

    def rebuild(self) -> int:
        """Rebuild detector state from the store (blocking: run in a thread); events replayed.

        Saved reference windows are restored as they were; the newest events of
        every version are replayed through the detectors without recording
        alarms again; signals with a confirmed alarm after their reference stay
        drifted.
        """
        monitor = self.monitor
        created: dict[tuple[str, int, str], float] = {}
        for ref in self.store.references():
            monitor.version(ref.adapter, ref.version).set_reference(
                ref.signal, ref.values, ref.source
            )
            created[(ref.adapter, ref.version, ref.signal)] = ref.created_ts
        for alarm in self.store.confirmed_alarms():
            k = (alarm["adapter"], alarm["version"], alarm["signal"])
            if k in created and alarm["ts"] >= created[k]:
                monitor.version(k[0], k[1]).signal(k[2]).mark_drifted()
        for request_id in self.store.orphan_feedback_request_ids(_MAX_ORPHANS + 1):
            self._add_orphan(request_id)
        limit = self.settings.reference_size + 2 * self.settings.window_size
        replayed = 0
        for adapter, version in self.store.versions():
            for row in self.store.recent_requests(adapter, version, limit):
                self._remember(row["request_id"], (adapter, version))
                pairs = _features_of_row(row).signals()
                if pairs:
                    monitor.observe(adapter, version, pairs)
                replayed += 1
            for fb in self.store.recent_feedback(adapter, version, limit):
                monitor.observe(adapter, version, feedback_signals(fb["score"], fb["negative"]))
                replayed += 1
            self._update_gauges(monitor.version(adapter, version))
        refs = [
            Reference(a, v, mon.signal, mon.source, time.time(), list(mon.reference))
            for a, v, mon in monitor.take_completed()
        ]
        self._save_references(refs)
        return replayed

    # --- operator actions -------------------------------------------------------------

    async def pin_reference(
        self, adapter: str, version: int, since: float | None, until: float | None
    ) -> list[str]:
        """Make stored events of a time range the reference of every signal; returns the signals."""
        n = self.settings.reference_size
        rows = await asyncio.to_thread(
            request_rows_between, self.store.engine, adapter, version, since, until, n
        )
        fbs = await asyncio.to_thread(
            feedback_rows_between, self.store.engine, adapter, version, since, until, n
        )
        if not rows and not fbs:
            raise NotFound(
                f"no stored events of {adapter} version {version} in that range", code="no_events"
            )
        values: dict[str, list[float | str]] = {}
        for row in rows:
            for name, value in _features_of_row(row).signals():
                values.setdefault(name, []).append(value)
        for fb in fbs:
            for name, value in feedback_signals(fb["score"], bool(fb["negative"])):
                values.setdefault(name, []).append(value)
        usable = {k: v for k, v in values.items() if len(v) >= 20}
        if not usable:
            raise InvalidRequest(
                "fewer than 20 values of every signal in that range", code="reference_too_small"
            )
        now = time.time()
        async with self._lock:
            vm = self.monitor.version(adapter, version)
            refs = []
            for name, vals in usable.items():
                vm.set_reference(name, vals, "pinned")
                refs.append(Reference(adapter, version, name, "pinned", now, vals))
            await asyncio.to_thread(self._save_references, refs)
            self._update_gauges(vm)
        return sorted(usable)

    async def purge(self) -> tuple[int, int]:
        """Apply the retention setting once."""
        if self.settings.retention_days <= 0:
            return 0, 0
        cutoff = time.time() - self.settings.retention_days * 86400.0
        return await asyncio.to_thread(self.store.purge, cutoff)

    # --- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        versions = []
        for (adapter, version), vm in sorted(self.monitor.versions.items()):
            entry: dict[str, Any] = {
                "adapter": adapter,
                "version": _version_label(version),
                "negative_feedback_ratio": vm.negative_ratio,
                "feedback_count": vm.feedback_count,
                "drifted": sorted(n for n, m in vm.signals.items() if m.phase == "drifted"),
                "signals": {name: mon.status() for name, mon in sorted(vm.signals.items())},
            }
            if self.embeddings is not None:
                entry["embedding_distance"] = self.embeddings.distance(adapter, version)
                test = self.embeddings.test_status(adapter, version)
                entry["embedding_test"] = test
                if test is not None and test["phase"] == "drifted":
                    entry["drifted"] = sorted([*entry["drifted"], EMBEDDING_SIGNAL])
            versions.append(entry)
        return {"trigger_mode": self.trigger.mode, "versions": versions}


def _json(detail: dict[str, Any]) -> str:
    return orjson.dumps(detail).decode()


def _log_fill_failure(task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("filling the review queue failed", exc_info=exc)
