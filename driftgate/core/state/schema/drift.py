"""The drift service's tables: requests, feedback, alarms, triggers, reference windows,
the review queue."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from driftgate.core.state.schema.base import metadata

#: Version number stored for requests to the base model (adapter ``base``).
BASE_VERSION = 0

#: ``drift_feedback.source`` of feedback a client sent and of a review queue label.
FEEDBACK_CLIENT = "client"
FEEDBACK_REVIEW = "review"

requests = Table(
    "drift_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("request_id", String(128), nullable=False, index=True),
    Column("ts", Float, nullable=False, index=True),
    Column("tenant", String(128), nullable=False),
    Column("adapter", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("endpoint", String(16), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("replica", String(256)),
    Column("prompt_text", Text),
    Column("completion_text", Text),
    Column("prompt_sha256", String(64)),
    Column("completion_sha256", String(64)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("finish_reason", String(32)),
    Column("empty", Boolean, nullable=False),
    Column("refusal", Boolean, nullable=False),
    #: The client pinned the version (``support@3``): left out of the canary judge's window.
    Column("pinned", Boolean, nullable=False, server_default=false()),
    #: The chat request as served (``RequestEvent.served``, JSON) under the ``keep`` text
    #: policy; its SHA-256 under ``hash``; neither under ``drop`` or for older gateways.
    Column("served_json", Text),
    Column("served_sha256", String(64)),
    #: Answer confidence (``RequestEvent.mean_logprob``, ``first_token_margin``); null where
    #: the gateway had none (completions, no logprobs, older gateways).
    Column("mean_logprob", Float),
    Column("first_token_margin", Float),
    Index("ix_drift_requests_adapter_version_id", "adapter", "version", "id"),
)

#: Stored columns of a request row, in the order of the tuples that
#: ``drift.batch.request_rows`` builds and ``drift.store.DriftStore.insert_requests`` takes.
REQUEST_COLUMNS: tuple[str, ...] = (
    "event_id",
    "request_id",
    "ts",
    "tenant",
    "adapter",
    "version",
    "endpoint",
    "stream",
    "status_code",
    "replica",
    "prompt_text",
    "completion_text",
    "prompt_sha256",
    "completion_sha256",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "ttft_ms",
    "finish_reason",
    "empty",
    "refusal",
    "pinned",
    "served_json",
    "served_sha256",
    "mean_logprob",
    "first_token_margin",
)

#: Boolean columns of :data:`REQUEST_COLUMNS`, which request rows carry as 0/1.
REQUEST_FLAG_COLUMNS: tuple[str, ...] = ("stream", "empty", "refusal", "pinned")


feedback = Table(
    "drift_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("request_id", String(128), nullable=False, index=True),
    Column("ts", Float, nullable=False, index=True),
    Column("tenant", String(128), nullable=False),
    Column("score", Float),
    Column("label", String(256)),
    Column("correction", Text),
    Column("negative", Boolean, nullable=False),
    #: Who gave it: ``client`` (the tenant's app, ``POST /v1/feedback``) or ``review``
    #: (a reviewer answering the review queue); training data keeps it as provenance.
    Column("source", String(16), nullable=False, server_default=FEEDBACK_CLIENT),
    # One vote per request and tenant: a later feedback replaces the row (DriftStore).
    UniqueConstraint("request_id", "tenant", name="uq_drift_feedback_vote"),
)

alarms = Table(
    "drift_alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("adapter", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("signal", String(64), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("score", Float, nullable=False),
    Column("p_value", Float),
    Column("detail", Text, nullable=False),
    Index("ix_drift_alarms_adapter_version", "adapter", "version"),
)

triggers = Table(
    "drift_triggers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("adapter", String(128), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=False),
)

references = Table(
    "drift_references",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("adapter", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("signal", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("created_ts", Float, nullable=False),
    Column("values_json", Text, nullable=False),
    UniqueConstraint("adapter", "version", "signal", name="uq_drift_references_signal"),
)

#: The review queue: requests picked for a reviewer's label when a version's drift was
#: confirmed (``drift.review_queue``). A label is stored as the tenant's feedback on the
#: request (source ``review``); ``labelled_ts`` says when.
review_items = Table(
    "drift_review_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("adapter", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("created_ts", Float, nullable=False),
    #: Pick order within its selection (0 = most worth a label).
    Column("rank", Integer, nullable=False),
    #: Why it was picked (JSON: strategy, distance, confidence, ...).
    Column("reasons", Text, nullable=False),
    Column("labelled_ts", Float),
    UniqueConstraint("request_id", "tenant", name="uq_drift_review_items_request"),
    Index("ix_drift_review_items_adapter_tenant", "adapter", "tenant", "labelled_ts"),
)
