"""Dataset curation: logged traffic and feedback for one adapter -> train/validation examples.

Pure and deterministic (no I/O): the job reads records from the drift store and passes them
here. Rules, in order:

0. Only the traffic of tenants opted in to train the adapter is used (``tenants``).
1. Only chat requests that succeeded are usable. An example is the request as served (its
   recorded message list: system prompt and earlier turns included) plus the target
   assistant turn; events of older gateways, which recorded the last user message only,
   get the task's default system prompt; a request's tools, recorded as sent, are rendered
   by the template as vLLM renders them. Records cut to fit the event caps, requests whose
   tools were too long to record (hash only) are left out, counted. A tool-call answer is
   a target (an assistant turn with those calls) when the base model's chat template
   renders tool calls (``tool_call_targets``, probed at job start); otherwise it is left
   out and counted.
2. The latest feedback decides the target: a correction replaces the completion (the last
   assistant turn only); a label is
   the target when ``label_is_target`` (classification adapters); a positive score keeps the
   completion; a negative score without correction excludes the request (counted);
   requests without feedback are excluded unless ``include_unrated``.
3. Length and format filters (a truncated completion is never a target).
4. Prompts that duplicate a golden-set prompt (exactly or nearly, whatever the system
   prompt and earlier turns) are dropped: the golden set is never trained on. Then exact
   and near duplicates (same system prompt and earlier turns) are removed, the newest kept.
5. No tenant supplies more than ``max_tenant_share`` of the examples kept when two or
   more tenants are opted in (:mod:`retrain.tenant_share`; a tenant over it loses its
   oldest examples). Every example keeps its tenant and request id.
6. Anchors against forgetting (``anchor_ratio`` > 0, a drifted window known): unrated
   requests answered before the drift began with a mean token logprob of at least
   ``anchor_min_logprob`` keep the answer as the target: what the serving version already
   did well, so that learning the drifted traffic does not unlearn the rest. Real examples
   (feedback, review) win deduplication over them; at most ``anchor_ratio`` anchors per
   real example, spread over the distinct answers and, within one, over the prompts (the
   most confident first, then farthest-first); they train
   and are never held out (the gate judges on what people said). A tenant chooses the
   prompt of an anchor, never its target, and the share cap counts anchors.
7. Weights favour the drifted window; older traffic decays with a half-life.
8. A deterministic split by a hash of the prompt; too little data raises
   :class:`~retrain.errors.InsufficientData` with the counts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftgate.core.events import FeedbackEvent, RequestEvent, ServedRequest
from retrain.dedup import NearDuplicateIndex, normalize_for_dedup
from retrain.errors import InsufficientData
from retrain.examples import ChatExample
from retrain.served_prompt import PromptParts, history_key, served_parts, split_prompt
from retrain.spread import farthest_first
from retrain.tenant_share import cap_by_tenant
from retrain.tool_answer import is_tool_call_answer, parse_tool_call_answer


@dataclass(frozen=True, slots=True)
class TrafficRecord:
    """One logged request with the feedback its own tenant gave on it."""

    request_id: str
    ts: float
    prompt_text: str | None
    completion_text: str | None
    #: The tenant that made the request (and gave the feedback): its provenance.
    tenant: str
    endpoint: str = "chat"
    status_code: int = 200
    finish_reason: str | None = None
    feedback: tuple[FeedbackEvent, ...] = ()
    #: The chat request as served; ``None`` for events of older gateways (or when the text
    #: policy kept no text), which fall back to ``prompt_text`` and the default system.
    served: ServedRequest | None = None
    #: Who gave the feedback: ``client`` (the tenant's app) or ``review`` (the review
    #: queue); curation counts kept examples by it (``feedback_<source>``).
    feedback_source: str = "client"
    #: The answer's mean token logprob as the gateway measured it (``None``: not
    #: measured); an unrated pre-drift answer this confident can be an anchor.
    mean_logprob: float | None = None

    @classmethod
    def from_events(
        cls, request: RequestEvent, feedback: Iterable[FeedbackEvent] = ()
    ) -> TrafficRecord:
        return cls(
            request_id=request.request_id,
            ts=request.ts,
            prompt_text=request.prompt_text,
            completion_text=request.completion_text,
            tenant=request.tenant,
            endpoint=request.endpoint,
            status_code=request.status_code,
            finish_reason=request.finish_reason,
            served=request.served,
            mean_logprob=request.mean_logprob,
            feedback=tuple(
                f
                for f in feedback
                if f.request_id == request.request_id and f.tenant == request.tenant
            ),
        )


@dataclass(frozen=True, slots=True)
class CurationConfig:
    include_unrated: bool = False
    label_is_target: bool = True
    min_prompt_chars: int = 2
    max_prompt_chars: int = 4000
    min_target_chars: int = 1
    max_target_chars: int = 2000
    #: If set, every target must match this regular expression (fully).
    target_pattern: str | None = None
    near_dup_threshold: float = 0.85
    shingle_k: int = 5
    validation_fraction: float = 0.2
    min_validation: int = 4
    min_train: int = 16
    #: Weight of examples inside the drifted window (at or after ``drift_start``).
    window_weight: float = 2.0
    #: Older examples: weight halves every ``half_life_s`` before the window, floored.
    half_life_s: float = 7 * 86400.0
    min_weight: float = 0.25
    #: Keep at most this many (newest) examples after deduplication.
    max_examples: int | None = None
    #: Most of the kept examples one tenant may supply, when two or more are opted in.
    max_tenant_share: float = 0.5
    split_salt: str = "driftgate-split-v1"
    #: System prompt for events without a served-request record (older gateways logged
    #: the last user message only): set it to the one the adapter's clients send.
    default_system: str | None = None
    #: Whether the base model's chat template renders an assistant turn's tool calls
    #: (:func:`retrain.template_probe.renders_tool_calls`): only then is a tool-call answer
    #: a target; otherwise the target would be an empty turn.
    tool_call_targets: bool = False
    #: Anchors (rule 6): at most this many per real example; 0 keeps none.
    anchor_ratio: float = 0.0
    anchor_min_logprob: float = -0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1)")
        if self.min_train < 1 or self.min_validation < 1:
            raise ValueError("min_train and min_validation must be >= 1")
        if self.half_life_s <= 0 or self.window_weight <= 0 or not 0 < self.min_weight <= 1:
            raise ValueError("weights: half_life_s, window_weight > 0 and min_weight in (0, 1]")
        if not 0.0 < self.max_tenant_share <= 1.0:
            raise ValueError("max_tenant_share must be in (0, 1]")
        if self.anchor_ratio < 0 or self.anchor_min_logprob > 0:
            raise ValueError("anchor_ratio must be >= 0 and anchor_min_logprob <= 0")


@dataclass(frozen=True, slots=True)
class CuratedDataset:
    train: list[ChatExample]
    validation: list[ChatExample]
    #: Counts: ``total``, ``kept_*`` by source, ``excluded_*`` by reason, ``duplicates_*``,
    #: ``feedback_client`` and ``feedback_review`` (kept examples by who labelled them).
    stats: dict[str, int]
    dataset_hash: str
    drift_start: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    #: Whether the per-tenant share cap applied (two or more tenants opted in).
    share_capped: bool = False
    max_tenant_share: float = 1.0

    @property
    def size(self) -> int:
        return len(self.train) + len(self.validation)

    @property
    def tenants(self) -> dict[str, int]:
        """Examples (train and validation) per tenant, most first."""
        counts = Counter(e.tenant or "" for e in (*self.train, *self.validation))
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def metadata(self) -> dict[str, Any]:
        return {
            "hash": self.dataset_hash,
            "train": len(self.train),
            "validation": len(self.validation),
            "stats": dict(self.stats),
            "drift_start": self.drift_start,
            "tenants": self.tenants,
            "tenant_share": {"max": self.max_tenant_share, "capped": self.share_capped},
        }


@dataclass(frozen=True, slots=True)
class _Candidate:
    record: TrafficRecord
    system: str | None
    parts: PromptParts
    target: str
    source: str  # the kept_* counter key

    @property
    def prompt(self) -> str:
        return self.parts.prompt

    def example(self, weight: float) -> ChatExample:
        return ChatExample(
            prompt=self.parts.prompt,
            completion=self.target,
            system=self.system,
            history=self.parts.history,
            tools_json=self.parts.tools_json,
            system_name=self.parts.system_name if self.system is not None else None,
            prompt_name=self.parts.prompt_name,
            response_format_json=self.parts.response_format_json,
            stop=self.parts.stop,
            tool_choice_json=self.parts.tool_choice_json,
            weight=weight,
            tenant=self.record.tenant,
            request_id=self.record.request_id,
        )


#: The counter key (and stratum) of anchors.
KEPT_ANCHOR = "kept_anchor"


def _target(
    rec: TrafficRecord, cfg: CurationConfig, drift_start: float | None
) -> tuple[str | None, str]:
    """(target text or None, counter key) for one record."""
    if rec.endpoint != "chat":
        return None, "excluded_not_chat"
    if rec.status_code != 200 or rec.prompt_text is None:
        return None, "excluded_failed"
    if not rec.feedback:
        if (
            cfg.anchor_ratio > 0
            and drift_start is not None
            and rec.ts < drift_start
            and rec.mean_logprob is not None
            and rec.mean_logprob >= cfg.anchor_min_logprob
            and rec.completion_text
            and rec.finish_reason != "length"
        ):
            return rec.completion_text, KEPT_ANCHOR
        if cfg.include_unrated and rec.completion_text and rec.finish_reason != "length":
            return rec.completion_text, "kept_unrated"
        return None, "excluded_unrated"
    fb = max(rec.feedback, key=lambda f: (f.ts, f.event_id))
    if fb.correction is not None:
        return fb.correction, "kept_correction"
    if cfg.label_is_target and fb.label is not None:
        return fb.label, "kept_label"
    if fb.score is None:
        return None, "excluded_label_only"
    if fb.score < 0.5:
        return None, "excluded_negative_no_correction"
    if not rec.completion_text:
        return None, "excluded_failed"
    if rec.finish_reason == "length":
        return None, "excluded_truncated"
    return rec.completion_text, "kept_positive"


def _weight(ts: float, anchor: float, in_window: bool, cfg: CurationConfig) -> float:
    if in_window:
        return cfg.window_weight
    age = max(0.0, anchor - ts)
    return max(cfg.min_weight, float(0.5 ** (age / cfg.half_life_s)))


def _extras_key(example: ChatExample) -> str:
    """The example's :meth:`~ChatExample.extras` as canonical JSON; "" when it has none."""
    extras = example.extras()
    return json.dumps(extras, sort_keys=True, ensure_ascii=False) if extras else ""


def _split_key(ex: ChatExample, salt: str) -> int:
    text = f"{salt}\x00{normalize_for_dedup(ex.system or '')}\x00{normalize_for_dedup(ex.prompt)}"
    extras = _extras_key(ex)
    if ex.history or ex.tools_json or extras:  # single-turn keys stay as they were
        text += f"\x00{history_key(ex.history)}\x00{ex.tools_json or ''}"
    if extras:  # so do the keys of examples without the newer fields
        text += f"\x00{extras}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def dataset_hash(train: Sequence[ChatExample], validation: Sequence[ChatExample]) -> str:
    """Content hash of both splits (order-independent within a split)."""

    def row(x: ChatExample) -> list[Any]:
        fields: list[Any] = [x.system or "", x.prompt, x.completion, round(x.weight, 6)]
        # Earlier turns, tools and the newer fields only where there are some: a
        # single-turn dataset without them hashes as before.
        extras = _extras_key(x)
        if x.history or x.tools_json or extras:
            fields += [history_key(x.history), x.tools_json or ""]
        return [*fields, extras] if extras else fields

    def rows(xs: Sequence[ChatExample]) -> list[list[Any]]:
        return sorted(row(x) for x in xs)

    blob = json.dumps({"train": rows(train), "validation": rows(validation)}, sort_keys=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def curate(
    records: Iterable[TrafficRecord],
    config: CurationConfig | None = None,
    *,
    golden: Sequence[ChatExample] = (),
    drift_start: float | None = None,
    tenants: Collection[str] | None = None,
) -> CuratedDataset:
    """Curate ``records``; raises :class:`InsufficientData` when too little is usable.

    ``tenants``: those opted in to train the adapter; the records of any other tenant are
    excluded. ``None`` (offline tools that chose their records themselves) takes every
    tenant in the records as opted in.
    """
    cfg = config or CurationConfig()
    pattern = re.compile(cfg.target_pattern, re.DOTALL) if cfg.target_pattern else None
    stats: Counter[str] = Counter()
    candidates: list[_Candidate] = []
    allowed = None if tenants is None else frozenset(tenants)
    seen_tenants: set[str] = set()
    for rec in records:
        stats["total"] += 1
        if allowed is not None and rec.tenant not in allowed:
            stats["excluded_tenant_not_opted_in"] += 1
            continue
        seen_tenants.add(rec.tenant)
        target, key = _target(rec, cfg, drift_start)
        if target is None:
            stats[key] += 1
            continue
        if is_tool_call_answer(target):
            if not cfg.tool_call_targets:
                stats["excluded_tool_call_target_template_cannot_render"] += 1
                continue
            if parse_tool_call_answer(target) is None:  # over the caps on a recorded call
                stats["excluded_tool_call_target_invalid"] += 1
                continue
        if rec.served is not None:
            parts, excluded = served_parts(rec.served)
            system = parts.system if parts is not None else None
        else:
            parts, excluded = split_prompt(rec.prompt_text or ""), "excluded_last_not_user"
            system = parts.system if parts is not None else None
            # Older gateways logged the last user message only: put back the task's prompt.
            system = system if system is not None else cfg.default_system
        if parts is None:
            stats[excluded] += 1
            continue
        target = target.strip()
        reason = _filter(parts.prompt, target, cfg, pattern)
        if reason is not None:
            stats[reason] += 1
            continue
        candidates.append(_Candidate(rec, system, parts, target, key))

    # Newest first: the newest of duplicates is kept; anchors after every real example.
    candidates.sort(key=lambda c: (c.source == KEPT_ANCHOR, -c.record.ts, c.record.request_id))
    # The golden set is judged on the user prompt alone: served system prompts vary (dates,
    # user context) and a conversation may end with a golden prompt; neither may train on it.
    golden_index = NearDuplicateIndex(threshold=cfg.near_dup_threshold, k=cfg.shingle_k)
    for i, g in enumerate(golden):
        golden_index.add(f"golden:{i}", g.prompt)
    indexes: dict[str, NearDuplicateIndex] = {}
    kept: list[_Candidate] = []
    for c in candidates:
        if golden_index.find(c.prompt) is not None:
            stats["excluded_golden_overlap"] += 1
            continue
        idx = _index_for(indexes, c.example(1.0), cfg)
        hit = idx.find(c.prompt)
        if hit is not None:
            if idx.is_exact(c.prompt):
                stats["duplicates_exact"] += 1
            else:
                stats["duplicates_near"] += 1
            continue
        idx.add(f"req:{len(kept)}", c.prompt)
        kept.append(c)
    anchors = [c for c in kept if c.source == KEPT_ANCHOR]
    kept = [c for c in kept if c.source != KEPT_ANCHOR]
    if cfg.max_examples is not None and len(kept) > cfg.max_examples:
        stats["excluded_over_cap"] += len(kept) - cfg.max_examples
        kept = kept[: cfg.max_examples]
    chosen = pick_anchors(anchors, int(cfg.anchor_ratio * len(kept)))
    stats["excluded_anchor_over_ratio"] += len(anchors) - len(chosen)
    kept += chosen
    # Last, so the share holds on exactly what is trained. One opted-in tenant has nobody
    # to share with: the owner chose it alone (docs/SECURITY.md).
    capped = len(allowed if allowed is not None else seen_tenants) >= 2
    if capped:
        kept, dropped = cap_by_tenant(kept, lambda c: c.record.tenant, cfg.max_tenant_share)
        if dropped:
            stats["excluded_tenant_share"] += sum(dropped.values())

    reference_ts = (
        drift_start if drift_start is not None else max((c.record.ts for c in kept), default=0.0)
    )
    examples = [
        c.example(
            _weight(
                c.record.ts,
                reference_ts,
                drift_start is not None and c.record.ts >= drift_start,
                cfg,
            )
        )
        for c in kept
    ]
    stats.update(c.source for c in kept)
    stats.update(f"feedback_{c.record.feedback_source}" for c in kept if c.record.feedback)
    # Stratify by where an example comes from (a correction of a wrong answer or an approved
    # one) and whether it is from the drifted window: corrections are few and they are what
    # the gate must see, or the serving version looks perfect on its own approved answers.
    real = [(e, c) for e, c in zip(examples, kept, strict=True) if c.source != KEPT_ANCHOR]
    strata = [(c.source, drift_start is not None and c.record.ts >= drift_start) for _, c in real]
    train, validation = _split([e for e, _ in real], cfg, strata)
    real_train = len(train)
    train += [e for e, c in zip(examples, kept, strict=True) if c.source == KEPT_ANCHOR]
    stats["train"], stats["validation"] = len(train), len(validation)
    if real_train < cfg.min_train or len(validation) < cfg.min_validation:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(stats.items()) if v)
        hint = ""
        if stats["excluded_tenant_share"]:
            hint = (
                f"; no tenant may supply more than {cfg.max_tenant_share:.0%} of the "
                "examples while two or more are opted in"
            )
        raise InsufficientData(
            f"too little usable data: {len(real)} curated examples (anchors aside), need at least "
            f"{cfg.min_train} to train and {cfg.min_validation} to validate ({detail}){hint}"
        )
    return CuratedDataset(
        train=train,
        validation=validation,
        stats=dict(stats),
        dataset_hash=dataset_hash(train, validation),
        drift_start=drift_start,
        share_capped=capped,
        max_tenant_share=cfg.max_tenant_share if capped else 1.0,
    )


def pick_anchors(anchors: Sequence[_Candidate], n: int) -> list[_Candidate]:
    """At most ``n`` of ``anchors``: one per distinct answer in turn (so every answer the
    serving version gives confidently is rehearsed); within an answer the most confident
    first, then farthest-first over the prompts (:mod:`retrain.spread`), so the anchors
    span what the version answers that way rather than repeat its easiest prompts."""
    by_target: dict[str, list[_Candidate]] = {}
    for c in sorted(anchors, key=lambda c: (-(c.record.mean_logprob or 0.0), c.record.request_id)):
        by_target.setdefault(c.target, []).append(c)
    queues = []
    for t in sorted(by_target):
        pool = by_target[t]
        queues.append([pool[i] for i in farthest_first([c.prompt for c in pool], n)])
    out: list[_Candidate] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in queues):
        out += [q[depth] for q in queues if depth < len(q)][: n - len(out)]
        depth += 1
    return out


def _filter(
    prompt: str, target: str, cfg: CurationConfig, pattern: re.Pattern[str] | None
) -> str | None:
    if len(prompt.strip()) < cfg.min_prompt_chars or len(target) < cfg.min_target_chars:
        return "excluded_too_short"
    if len(prompt) > cfg.max_prompt_chars or len(target) > cfg.max_target_chars:
        return "excluded_too_long"
    if "\ufffd" in prompt or "\ufffd" in target or "\x00" in prompt or "\x00" in target:
        return "excluded_format"
    if pattern is not None and pattern.fullmatch(target) is None:
        return "excluded_format"
    return None


def _index_for(
    indexes: dict[str, NearDuplicateIndex], example: ChatExample, cfg: CurationConfig
) -> NearDuplicateIndex:
    """One index per system prompt, earlier turns, tools and the rest of the request:
    near-duplicates are judged on the last user prompt of the same conversation so far."""
    key = "\x00".join(
        (
            normalize_for_dedup(example.system or ""),
            history_key(example.history),
            example.tools_json or "",
            _extras_key(example),
        )
    )
    if key not in indexes:
        indexes[key] = NearDuplicateIndex(threshold=cfg.near_dup_threshold, k=cfg.shingle_k)
    return indexes[key]


def _split(
    examples: list[ChatExample], cfg: CurationConfig, strata: Sequence[object] | None = None
) -> tuple[list[ChatExample], list[ChatExample]]:
    """Deterministic split by prompt hash, per stratum: in each stratum the examples whose
    hash falls under the fraction go to validation, and at least one when the stratum has
    three or more examples; overall at least ``min_validation`` (lowest hashes) when there
    are enough examples for both splits."""
    groups: dict[object, list[ChatExample]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(strata[i] if strata is not None else None, []).append(ex)
    train: list[ChatExample] = []
    validation: list[ChatExample] = []
    for _, group in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        keyed = sorted(group, key=lambda e: _split_key(e, cfg.split_salt))
        cut = sum(
            1 for e in keyed if _split_key(e, cfg.split_salt) / 2**64 < cfg.validation_fraction
        )
        if cut == 0 and len(keyed) >= 3:
            cut = 1
        validation += keyed[:cut]
        train += keyed[cut:]
    if len(validation) < cfg.min_validation and len(examples) >= cfg.min_validation + cfg.min_train:
        train.sort(key=lambda e: _split_key(e, cfg.split_salt))
        need = cfg.min_validation - len(validation)
        validation, train = validation + train[:need], train[need:]
    return train, validation
