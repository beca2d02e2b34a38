"""Request events and feedback toward the drift service.

The drift service here is a small aiohttp fake (the real one is another
package's); it validates what it receives with the shared event models and can
be slow, failing or absent on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from driftgate.core.events import MAX_BATCH_BYTES, MAX_TEXT_CHARS, EventBatch, FeedbackEvent
from gateway.event_sink import batch_bodies
from gateway.served_record import served_record
from tests.gateway.conftest import BASE, StackFactory

#: Bounds how long the fake drift service holds a batch: only reached when a test fails.
HOLD_BOUND_S = 10.0


@dataclass
class FakeDrift:
    status: int = 202
    #: While set, event batches wait for it (at most HOLD_BOUND_S) before they are answered.
    hold: asyncio.Event | None = None
    batches: list[EventBatch] = field(default_factory=list)
    feedback: list[FeedbackEvent] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> FakeDrift:
        app = web.Application()
        app.router.add_post("/v1/events", self._events)
        app.router.add_post("/v1/feedback", self._feedback)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def _events(self, request: web.Request) -> web.Response:
        if self.hold is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hold.wait(), HOLD_BOUND_S)
        batch = EventBatch.model_validate_json(await request.read())
        self.batches.append(batch)
        return web.json_response({"accepted": len(batch.events), "duplicates": 0}, status=202)

    async def _feedback(self, request: web.Request) -> web.Response:
        if self.status == 404:  # as the drift service refuses another tenant's request
            error = {"message": "no request with this id", "code": "not_found"}
            return web.json_response({"error": error}, status=404)
        if self.status >= 300:
            return web.json_response({"error": {"message": "db down"}}, status=self.status)
        event = FeedbackEvent.model_validate_json(await request.read())
        self.feedback.append(event)
        return web.json_response({"feedback_id": f"fb-{len(self.feedback)}"}, status=202)

    @property
    def events(self) -> list[object]:
        return [e for b in self.batches for e in b.events]


async def _eventually(check: Callable[[], bool], tick_s: float, ticks: int = 50) -> bool:
    """Poll ``check`` every ``tick_s`` (a configured interval's fraction), ``ticks`` times."""
    for _ in range(ticks):
        if check():
            return True
        await asyncio.sleep(tick_s)
    return check()


def _closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


async def test_request_events_are_batched_and_complete(make_stack: StackFactory) -> None:
    drift = await FakeDrift().start()
    s = await make_stack(drift_url=drift.url, event_flush_interval_s=0.1)
    key = await s.tenant("acme", ["support"])
    v = await s.version("support")
    ids = []
    for i in range(5):
        r = await s.chat(key, "support", messages=[{"role": "user", "content": f"ticket {i}"}])
        ids.append(r.json()["id"])
    r = await s.chat(key, "nosuch")  # a refused request is an event too
    for _ in range(50):
        if len(drift.events) == 6:
            break
        await asyncio.sleep(0.05)
    events = {e.request_id: e for b in drift.batches for e in b.events}
    assert set(ids) <= set(events) and len(events) == 6
    e = events[ids[3]]
    assert (e.tenant, e.adapter, e.version, e.endpoint, e.status_code) == (
        "acme",
        "support",
        v,
        "chat",
        200,
    )
    assert e.prompt_text == "ticket 3" and e.completion_text and e.completion_text.endswith("3")
    assert e.prompt_tokens == 2 and e.completion_tokens > 0 and e.latency_ms > 0
    assert e.finish_reason == "stop" and e.replica
    refused = events[r.headers["x-request-id"]]
    assert refused.status_code == 404 and refused.adapter is None
    assert s.metric("driftgate_gateway_events_sent_total") == 6
    assert len(drift.batches) < 6  # batched
    await drift.runner.cleanup()  # type: ignore[union-attr]


async def test_drift_down_drops_events_and_serves(make_stack: StackFactory) -> None:
    s = await make_stack(drift_url=_closed_port_url(), event_flush_interval_s=0.05)
    key = await s.tenant("acme", ["*"])
    for _ in range(3):
        assert (await s.chat(key, BASE)).status_code == 200
    for _ in range(50):
        if s.metric("driftgate_gateway_events_dropped_total", reason="send_failed") == 3:
            break
        await asyncio.sleep(0.05)
    assert s.metric("driftgate_gateway_events_dropped_total", reason="send_failed") == 3


async def test_full_queue_drops_without_blocking(make_stack: StackFactory) -> None:
    # The drift service answers no batch until every inference answer is in. A gateway
    # that waited for it would answer only once the hold's bound ran out, after the
    # drift service had stored a batch: the first assertion below would fail.
    hold = asyncio.Event()
    drift = await FakeDrift(hold=hold).start()
    s = await make_stack(
        drift_url=drift.url,
        event_queue_size=2,
        event_batch_size=1,
        event_timeout_s=3 * HOLD_BOUND_S,  # the sink never gives up before the hold ends
    )
    key = await s.tenant("acme", ["*"], rate_limit_rps=0)
    results = await asyncio.gather(*(s.chat(key, BASE) for _ in range(20)))
    assert drift.batches == []  # every answer came while the drift service held its batch
    assert all(r.status_code == 200 for r in results)
    dropped = s.metric("driftgate_gateway_events_dropped_total", reason="queue_full")
    accepted = 20 - dropped
    # what fits: a full queue plus the one batch in flight to the held drift service
    cfg = s.settings
    assert cfg.event_queue_size <= accepted <= cfg.event_queue_size + cfg.event_batch_size
    hold.set()
    assert await _eventually(
        lambda: s.metric("driftgate_gateway_events_sent_total") == accepted,
        cfg.event_flush_interval_s / 5,
    )
    assert len(drift.events) == accepted
    await drift.runner.cleanup()  # type: ignore[union-attr]


async def test_feedback_acknowledged_only_when_stored(make_stack: StackFactory) -> None:
    drift = await FakeDrift().start()
    s = await make_stack(drift_url=drift.url)
    key = await s.tenant("acme", ["*"])
    auth = {"Authorization": f"Bearer {key}"}
    rid = (await s.chat(key, BASE)).json()["id"]
    url = s.url + "/v1/feedback"
    r = await s.client.post(
        url, json={"request_id": rid, "score": 0.0, "label": "wrong"}, headers=auth
    )
    assert r.status_code == 202 and r.json() == {"id": "fb-1", "request_id": rid}
    fb = drift.feedback[0]
    assert (fb.tenant, fb.request_id, fb.score, fb.label) == ("acme", rid, 0.0, "wrong")
    drift.status = 500
    r = await s.client.post(url, json={"request_id": rid, "correction": "x"}, headers=auth)
    assert r.status_code == 503 and r.json()["error"]["code"] == "drift_unavailable"
    drift.status = 404  # the drift service holds the request under another tenant
    r = await s.client.post(url, json={"request_id": rid, "score": 1.0}, headers=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert len(drift.feedback) == 1
    drift.status = 202
    r = await s.client.post(url, json={"request_id": rid}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"
    r = await s.client.post(url, json={"request_id": rid, "score": 2}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["param"] == "score"
    r = await s.client.post(url, content=b"nope", headers=auth)
    assert r.status_code == 400
    r = await s.client.post(url, json={"request_id": rid, "score": 1})
    assert r.status_code == 401
    assert s.metric("driftgate_gateway_feedback_total", tenant="acme", status="202") == 1
    assert s.metric("driftgate_gateway_feedback_total", tenant="acme", status="503") == 1
    assert s.metric("driftgate_gateway_feedback_total", tenant="acme", status="404") == 1
    await drift.runner.cleanup()  # type: ignore[union-attr]


async def test_feedback_without_drift_service_is_503(make_stack: StackFactory) -> None:
    s = await make_stack(drift_url=None)
    key = await s.tenant("acme", ["*"])
    rid = (await s.chat(key, BASE)).json()["id"]
    r = await s.client.post(
        s.url + "/v1/feedback",
        json={"request_id": rid, "score": 1},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 503
    assert orjson.loads(r.content)["error"]["type"] == "service_unavailable"


async def test_a_chat_event_records_the_request_as_served(make_stack: StackFactory) -> None:
    drift = await FakeDrift().start()
    s = await make_stack(drift_url=drift.url, event_flush_interval_s=0.1)
    key = await s.tenant("acme", ["support"])
    await s.version("support")
    messages = [
        {"role": "system", "content": "You route tickets."},
        {"role": "user", "content": "Printer jam"},
        {"role": "assistant", "content": "Q-HW"},
        {"role": "user", "content": "Following up on the printer"},
    ]
    r = await s.chat(key, "support", messages=messages, temperature=0.0, stop=["\n"])
    assert r.status_code == 200
    assert await _eventually(lambda: len(drift.events) == 1, 0.05)
    (e,) = drift.batches[0].events
    assert e.prompt_text == "Following up on the printer"  # what the drift features measure
    assert e.served is not None and e.served.complete
    assert [m.openai() for m in e.served.messages] == messages
    assert e.served.sampling.temperature == 0.0 and e.served.sampling.stop == ("\n",)
    # the key's cap the gateway set is what the engine was asked
    assert e.served.sampling.max_tokens is not None
    await drift.runner.cleanup()  # type: ignore[union-attr]


def test_batches_of_the_largest_events_are_split_under_the_body_limit() -> None:
    """Events at every cap (a 32,000-character prompt and completion, a full record of
    non-ASCII and control characters, the costliest JSON) go out in bodies the drift
    service accepts, each a valid ``EventBatch``, none lost."""
    text = ("é\x01" * MAX_TEXT_CHARS)[:MAX_TEXT_CHARS]
    payload = {"model": "m", "messages": [{"role": "user", "content": text}] * 3}
    served = served_record(payload)
    assert served is not None and not served["complete"]
    events = [
        {
            "request_id": f"r{i}",
            "tenant": "acme",
            "prompt_text": text,
            "completion_text": text,
            "served": served,
        }
        for i in range(60)
    ]
    bodies = batch_bodies(events, MAX_BATCH_BYTES)
    assert len(bodies) > 1
    assert all(len(body) <= MAX_BATCH_BYTES for _, body in bodies)
    got = [e.request_id for _, body in bodies for e in EventBatch.model_validate_json(body).events]
    assert got == [f"r{i}" for i in range(60)]
    assert sum(n for n, _ in bodies) == 60
