"""The review queue for tenants: the gateway's routes in front of a fake drift service.

The fake holds items by tenant and answers as the drift service does (its own routes are
tested in tests/drift/test_review_queue.py): the gateway must pass the key's tenant, never
a body's, and map every refusal to an OpenAI-shaped error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from driftgate.core.events import ReviewLabel
from tests.gateway.conftest import StackFactory
from tests.gateway.test_events import _closed_port_url


@dataclass
class FakeReviewDrift:
    #: item id -> tenant
    items: dict[int, str] = field(default_factory=lambda: {1: "acme", 2: "globex"})
    status: int = 200
    queries: list[dict[str, str]] = field(default_factory=list)
    labels: list[tuple[int, ReviewLabel]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> FakeReviewDrift:
        app = web.Application()
        app.router.add_get("/v1/review/items", self._list)
        app.router.add_post("/v1/review/items/{id}/label", self._label)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    def _item(self, item_id: int) -> dict[str, Any]:
        tenant = self.items[item_id]
        return {"id": item_id, "tenant": tenant, "request_id": f"req-{item_id}", "rank": 0}

    async def _list(self, request: web.Request) -> web.Response:
        if self.status >= 300:
            return web.json_response({"error": {"message": "db down"}}, status=self.status)
        q = dict(request.query)
        self.queries.append(q)
        data = [self._item(i) for i, t in self.items.items() if t == q.get("tenant")]
        return web.json_response({"object": "list", "data": data})

    async def _label(self, request: web.Request) -> web.Response:
        if self.status >= 300:
            return web.json_response({"error": {"message": "db down"}}, status=self.status)
        item_id = int(request.match_info["id"])
        answer = ReviewLabel.model_validate_json(await request.read())
        if self.items.get(item_id) != answer.tenant:
            error = {"message": "no review item with this id", "code": "not_found"}
            return web.json_response({"error": error}, status=404)
        self.labels.append((item_id, answer))
        return web.json_response({"id": item_id, "request_id": f"req-{item_id}"}, status=202)


async def test_a_tenant_lists_and_labels_its_own_items(make_stack: StackFactory) -> None:
    drift = await FakeReviewDrift().start()
    s = await make_stack(drift_url=drift.url)
    key = await s.tenant("acme", ["*"])
    auth = {"Authorization": f"Bearer {key}"}
    r = await s.client.get(
        s.url + "/v1/review/items",
        params={"adapter": "support", "limit": 5, "tenant": "globex"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["data"]] == [1]
    assert drift.queries == [{"adapter": "support", "tenant": "acme", "limit": "5"}]
    r = await s.client.post(s.url + "/v1/review/items/1", json={"label": "Q-NET"}, headers=auth)
    assert r.status_code == 202 and r.json() == {"id": 1, "request_id": "req-1"}
    r = await s.client.post(
        s.url + "/v1/review/items/1", json={"correction": "Q-HW, because ..."}, headers=auth
    )
    assert r.status_code == 202
    assert [(i, a.tenant, a.label, a.correction) for i, a in drift.labels] == [
        (1, "acme", "Q-NET", None),
        (1, "acme", None, "Q-HW, because ..."),
    ]
    await drift.stop()


async def test_each_refusal_has_its_status_and_openai_shape(make_stack: StackFactory) -> None:
    drift = await FakeReviewDrift().start()
    s = await make_stack(drift_url=drift.url)
    key = await s.tenant("acme", ["*"])
    auth = {"Authorization": f"Bearer {key}"}
    item = s.url + "/v1/review/items/"
    listing = s.url + "/v1/review/items"

    async def refused(status: int, method: str, url: str, **kw: Any) -> dict[str, Any]:
        r = await s.client.request(method, url, **kw)
        assert r.status_code == status, r.text
        error: dict[str, Any] = r.json()["error"]
        assert {"message", "type", "param", "code"} <= set(error)
        return error

    # wrong or missing key
    await refused(401, "GET", listing, params={"adapter": "support"})
    bad = {"Authorization": "Bearer sk-nope"}
    await refused(401, "POST", item + "1", json={"label": "Q"}, headers=bad)
    # another tenant's item, an unknown one, one that is not an id: all the same 404
    for target in ("2", "999", "abc"):
        e = await refused(404, "POST", item + target, json={"label": "Q"}, headers=auth)
        assert e["code"] == "not_found"
    # invalid bodies and queries
    await refused(400, "POST", item + "1", content=b"{nope", headers=auth)
    await refused(400, "POST", item + "1", json=["Q"], headers=auth)
    e = await refused(422, "POST", item + "1", json={}, headers=auth)
    assert e["type"] == "invalid_request_error"
    e = await refused(
        422, "POST", item + "1", json={"label": "Q", "tenant": "globex"}, headers=auth
    )
    assert e["param"] == "tenant"
    await refused(422, "POST", item + "1", json={"label": ""}, headers=auth)
    await refused(400, "GET", listing, headers=auth)
    e = await refused(400, "GET", listing, params={"adapter": "a", "limit": 0}, headers=auth)
    assert e["param"] == "limit"
    assert drift.labels == []
    # the drift service failing
    drift.status = 500
    e = await refused(503, "GET", listing, params={"adapter": "support"}, headers=auth)
    assert e["code"] == "drift_unavailable"
    await refused(503, "POST", item + "1", json={"label": "Q"}, headers=auth)
    await drift.stop()


async def test_drift_service_down_or_absent_is_503(make_stack: StackFactory) -> None:
    for drift_url in (_closed_port_url(), None):
        s = await make_stack(drift_url=drift_url)
        key = await s.tenant(f"t{len(str(drift_url))}", ["*"])
        auth = {"Authorization": f"Bearer {key}"}
        r = await s.client.get(
            s.url + "/v1/review/items", params={"adapter": "support"}, headers=auth
        )
        assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"
        r = await s.client.post(s.url + "/v1/review/items/1", json={"label": "Q"}, headers=auth)
        assert r.status_code == 503


async def test_review_calls_share_the_feedback_rate_limit(make_stack: StackFactory) -> None:
    drift = await FakeReviewDrift().start()
    s = await make_stack(drift_url=drift.url)
    key = await s.tenant("acme", ["*"], rate_limit_rps=0.01, burst=2)
    auth = {"Authorization": f"Bearer {key}"}
    url = s.url + "/v1/review/items"
    for _ in range(2):
        r = await s.client.get(url, params={"adapter": "support"}, headers=auth)
        assert r.status_code == 200
    r = await s.client.post(url + "/1", json={"label": "Q"}, headers=auth)
    assert r.status_code == 429 and "retry-after" in r.headers
    await drift.stop()
