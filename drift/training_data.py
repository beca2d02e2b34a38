"""The retrain job's read of the drift store: requests joined with their tenant's vote.

Kept apart from :mod:`drift.store`'s writes: this is the one query whose rows can become
training data, so its tenant rules live in one place.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine, exists, select

from drift.version_window import VOTE_JOIN
from driftgate.core.events import ServedRequest
from driftgate.core.state.schema.drift import BASE_VERSION, FEEDBACK_CLIENT, feedback, requests


@dataclass(frozen=True, slots=True)
class LabeledExample:
    """One logged request with the feedback its own tenant gave on it (for the retrain job)."""

    request_id: str
    tenant: str
    adapter: str
    version: int | None
    ts: float
    prompt: str | None
    completion: str | None
    score: float | None
    label: str | None
    correction: str | None
    negative: bool
    feedback_ts: float
    endpoint: str = "chat"
    status_code: int = 200
    finish_reason: str | None = None
    #: The chat request as served, validated (``None`` when not stored: older gateways,
    #: completions, or a text policy other than ``keep``).
    served: ServedRequest | None = None
    #: Who gave the feedback: ``client`` (the tenant's app) or ``review`` (the review queue).
    source: str = FEEDBACK_CLIENT


def requests_with_feedback(
    engine: Engine,
    adapter: str,
    since: float | None = None,
    limit: int | None = None,
    *,
    tenants: Collection[str] | None = None,
) -> list[LabeledExample]:
    """Requests of ``adapter`` (any version) joined with their feedback, oldest first.

    Feedback joins a request on its request id *and* tenant: one tenant's feedback
    never labels another tenant's request, even under the same id, and each request
    has one vote (the latest its tenant gave). ``tenants``: only these tenants'
    requests (the retrain job passes those opted in; ``[]`` returns nothing; ``None``,
    every tenant). ``since`` filters on the request time (Unix seconds).
    """
    if tenants is not None and not tenants:
        return []
    stmt = (
        select(
            requests.c.request_id,
            requests.c.tenant,
            requests.c.adapter,
            requests.c.version,
            requests.c.ts,
            requests.c.prompt_text,
            requests.c.completion_text,
            requests.c.endpoint,
            requests.c.status_code,
            requests.c.finish_reason,
            requests.c.served_json,
            feedback.c.score,
            feedback.c.label,
            feedback.c.correction,
            feedback.c.negative,
            feedback.c.source,
            feedback.c.ts.label("feedback_ts"),
        )
        .join(feedback, VOTE_JOIN)
        .where(requests.c.adapter == adapter)
        .order_by(requests.c.id, feedback.c.id)
    )
    if tenants is not None:
        stmt = stmt.where(requests.c.tenant.in_(sorted(set(tenants))))
    if since is not None:
        stmt = stmt.where(requests.c.ts >= since)
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        return [
            LabeledExample(
                request_id=r.request_id,
                tenant=r.tenant,
                adapter=r.adapter,
                version=None if r.version == BASE_VERSION else r.version,
                ts=r.ts,
                prompt=r.prompt_text,
                completion=r.completion_text,
                score=r.score,
                label=r.label,
                correction=r.correction,
                negative=bool(r.negative),
                feedback_ts=r.feedback_ts,
                endpoint=r.endpoint,
                status_code=r.status_code,
                finish_reason=r.finish_reason,
                served=_served(r.served_json),
                source=r.source,
            )
            for r in conn.execute(stmt)
        ]


@dataclass(frozen=True, slots=True)
class ConfidentAnswer:
    """A request nobody rated that one version answered confidently: a candidate anchor,
    an example of what the serving version already does well (its answer is the target)."""

    request_id: str
    tenant: str
    version: int | None
    ts: float
    prompt: str | None
    completion: str | None
    mean_logprob: float
    finish_reason: str | None = None
    served: ServedRequest | None = None


def confident_answers(
    engine: Engine,
    adapter: str,
    version: int | None,
    *,
    before: float,
    min_mean_logprob: float,
    tenants: Collection[str],
    limit: int = 2000,
) -> list[ConfidentAnswer]:
    """Successful chat requests of ``adapter`` routed to ``version`` (``None``: the base
    model) before ``before``, answered with a mean token logprob of at least
    ``min_mean_logprob``, that their tenant gave no feedback on; only ``tenants``' requests
    (``[]`` returns nothing), newest first, at most ``limit``.

    Unrated on purpose: a rated request is already training data with its vote, and a
    request its tenant voted down is no anchor whatever the model's confidence. Routed
    only: a request pinned to a version (``support@1``) is a client testing that version
    on prompts of its choosing, not the traffic the version serves.
    """
    if not tenants:
        return []
    logprob = requests.c.mean_logprob
    rated = exists().where(VOTE_JOIN)
    stmt = (
        select(
            requests.c.request_id,
            requests.c.tenant,
            requests.c.version,
            requests.c.ts,
            requests.c.prompt_text,
            requests.c.completion_text,
            requests.c.finish_reason,
            requests.c.served_json,
            logprob,
        )
        .where(
            requests.c.adapter == adapter,
            requests.c.version == (BASE_VERSION if version is None else version),
            requests.c.ts < before,
            requests.c.endpoint == "chat",
            requests.c.status_code == 200,
            requests.c.pinned.is_(False),
            logprob >= min_mean_logprob,
            requests.c.tenant.in_(sorted(set(tenants))),
            ~rated,
        )
        .order_by(requests.c.ts.desc(), requests.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [
            ConfidentAnswer(
                request_id=r.request_id,
                tenant=r.tenant,
                version=None if r.version == BASE_VERSION else r.version,
                ts=r.ts,
                prompt=r.prompt_text,
                completion=r.completion_text,
                mean_logprob=r.mean_logprob,
                finish_reason=r.finish_reason,
                served=_served(r.served_json),
            )
            for r in conn.execute(stmt)
        ]


def _served(served_json: str | None) -> ServedRequest | None:
    """The served request a row recorded (``None`` for rows from older gateways)."""
    return ServedRequest.model_validate_json(served_json) if served_json is not None else None
