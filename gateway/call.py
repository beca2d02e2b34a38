"""Book-keeping of one inference request: labels, timings, the closing metrics and event."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from driftgate.core.ids import time_ordered_id
from driftgate.core.state.models import TenantInfo
from gateway.answer_confidence import ConfidenceTally
from gateway.limits import Lease
from gateway.openai_body import Endpoint, prompt_text
from gateway.routing import Target
from gateway.runtime import Gateway
from gateway.served_record import served_record


class Call:
    __slots__ = (
        "endpoint",
        "gw",
        "hides_logprobs",
        "lease",
        "payload",
        "request_id",
        "stream",
        "t0",
        "target",
        "tenant",
        "ts",
    )

    def __init__(self, gw: Gateway, endpoint: Endpoint) -> None:
        self.gw = gw
        self.endpoint: Endpoint = endpoint
        self.t0 = time.perf_counter()
        self.ts = time.time()
        prefix = "chatcmpl-" if endpoint == "chat" else "cmpl-"
        #: Unbound until :meth:`authenticated`: an unauthenticated request's id takes no feedback.
        self.request_id = prefix + time_ordered_id()
        self.tenant: TenantInfo | None = None
        self.target: Target | None = None
        self.payload: dict[str, Any] | None = None
        self.stream = False
        #: The gateway asked for logprobs the client did not (``gateway/answer_confidence.py``).
        self.hides_logprobs = False
        #: The limits' lease while the request holds one (``gateway/limits.py``).
        self.lease: Lease | None = None

    def authenticated(self, tenant: TenantInfo) -> None:
        """The caller is ``tenant``: its request id becomes one only ``tenant`` can rate."""
        self.tenant = tenant
        self.request_id = self.gw.request_ids.bind(self.request_id, tenant.name)

    def release_slot(self) -> None:
        """Give the concurrency slot back now; the tokens are charged at :meth:`finish`."""
        lease = self.lease
        if lease is not None and lease.slot:
            self.gw.limits.settle(lease, 0, time.perf_counter())
            self.lease = replace(lease, slot=False)

    def finish(
        self,
        status: int,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        completion: str | None = None,
        finish_reason: str | None = None,
        ttft_s: float | None = None,
        replica: str | None = None,
        confidence: ConfidenceTally | None = None,
    ) -> None:
        end = time.perf_counter()
        elapsed = end - self.t0
        if self.lease is not None:
            self.gw.limits.settle(self.lease, prompt_tokens + completion_tokens, end)
            self.lease = None
        tenant = self.tenant
        target = self.target
        labels = self.gw.metrics.request_labels(
            tenant.name if tenant else "-",
            target.label_adapter if target else "-",
            target.label_version if target else "-",
            self.endpoint,
        )
        labels.requests(status).inc()
        labels.duration.observe(elapsed)
        if prompt_tokens:
            labels.prompt.inc(prompt_tokens)
        if completion_tokens:
            labels.completion.inc(completion_tokens)
        if ttft_s is not None:
            labels.ttft.observe(ttft_s)
        sink = self.gw.sink
        if tenant is None or not sink.enabled:
            return  # unauthenticated requests produce no event
        include_text = self.gw.settings.event_include_text
        payload = self.payload
        recorded = include_text and payload is not None and self.endpoint == "chat"
        sink.emit(
            {  # exactly the fields of driftgate.core.events.RequestEvent (see event_sink)
                "kind": "request",
                "event_id": time_ordered_id(),
                "request_id": self.request_id,
                "ts": self.ts,
                "tenant": tenant.name,
                "adapter": target.adapter if target else None,
                "version": target.version if target else None,
                "pinned": target.pinned if target else False,
                "endpoint": self.endpoint,
                "stream": self.stream,
                "prompt_text": (
                    prompt_text(payload, self.endpoint)
                    if include_text and payload is not None
                    else None
                ),
                "completion_text": completion if include_text else None,
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "latency_ms": elapsed * 1000.0,
                "ttft_ms": ttft_s * 1000.0 if ttft_s is not None else None,
                "finish_reason": finish_reason,
                "status_code": status,
                "replica": replica,
                "served": served_record(payload) if recorded and payload is not None else None,
                "mean_logprob": confidence.mean_logprob if confidence else None,
                "first_token_margin": confidence.first_token_margin if confidence else None,
            }
        )
