"""Admin API: tenants, adapter registration (and refusal), routes, retirement.

Upstream replicas are fake vLLMs (one of them refuses a path on purpose).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from driftgate.core import admin_api
from driftgate.core.client import AsyncClient, Client, ServiceRefused
from tests.gateway.conftest import Stack, StackFactory, make_peft_dir


async def test_tenant_lifecycle(stack: Stack) -> None:
    r = await stack.admin("POST", "/admin/tenants", {"name": "acme", "adapters": ["support"]})
    assert r.status_code == 201
    body = r.json()
    key = body["api_key"]
    assert body["tenant"]["name"] == "acme" and body["tenant"]["max_tokens"] == 1024
    r = await stack.admin("POST", "/admin/tenants", {"name": "acme"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    listed = (await stack.admin("GET", "/admin/tenants")).json()["data"]
    assert [t["name"] for t in listed] == ["acme"] and "api_key" not in listed[0]
    r2 = await stack.admin("POST", "/admin/tenants/acme/keys")
    second = r2.json()["api_key"]
    assert (await stack.chat(second, "SmolLM2-135M-Instruct")).status_code == 200
    assert (await stack.admin("DELETE", "/admin/tenants/acme")).status_code == 204
    assert (await stack.chat(key, "SmolLM2-135M-Instruct")).status_code == 401
    assert (await stack.admin("DELETE", "/admin/tenants/acme")).status_code == 404


async def test_register_loads_everywhere_and_refusal_unloads(make_stack: StackFactory) -> None:
    s = await make_stack(replicas=2)
    v = await s.version("support", route=False)
    assert all(f.loaded == {f"support--v{v}": f.loaded[f"support--v{v}"]} for f in s.replicas)
    bad_path = make_peft_dir(s.tmp, "refused")
    s.replicas[1].refuse_paths.add(bad_path)
    r = await s.admin("POST", "/admin/adapters/support/versions", {"path": bad_path})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "adapter_load_failed" and "invalid LoRA" in err["message"]
    assert all("support--v2" not in f.loaded for f in s.replicas)  # unloaded from replica 0
    versions = (await s.admin("GET", "/admin/adapters?adapter=support")).json()["data"]
    assert [(x["version"], x["state"]) for x in versions] == [(1, "ready"), (2, "failed")]
    r = await s.admin("PUT", "/admin/routes/support", {"weights": {"2": 1.0}})
    assert r.status_code == 409
    rank = make_peft_dir(s.tmp, "rank64", r=64)
    r = await s.admin("POST", "/admin/adapters/support/versions", {"path": rank})
    assert r.status_code == 400 and "rank" in r.json()["error"]["message"]
    r = await s.admin("POST", "/admin/adapters/Bad Name/versions", {"path": rank})
    assert r.status_code == 400


async def test_route_weights_split_traffic_and_change_within_2s(make_stack: StackFactory) -> None:
    s = await make_stack(state_refresh_s=1.0)
    key = await s.tenant("acme", ["support"], rate_limit_rps=0)
    v1 = await s.version("support")
    v2 = await s.version("support", route=False)
    r = await s.admin("PUT", "/admin/routes/support", {"weights": {str(v1): 3, str(v2): 1}})
    assert r.status_code == 200
    models = Counter([(await s.chat(key, "support")).json()["model"] for _ in range(400)])
    assert 0.65 < models[f"support@{v1}"] / 400 < 0.85
    assert s.metric("driftgate_gateway_route_weight", adapter="support", version=str(v2)) == 0.25
    # a second gateway on the same store sees a route change within 2 s
    other = await make_stack()
    other_key = await other.tenant("other", ["support"], rate_limit_rps=0)
    await s.admin("PUT", "/admin/routes/support", {"weights": {str(v2): 1}})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while (await other.chat(other_key, "support")).json().get("model") != f"support@{v2}":
        assert loop.time() - t0 < 2.0
        await asyncio.sleep(0.05)


async def test_retire_needs_unrouted_version_then_unloads(stack: Stack) -> None:
    key = await stack.tenant("acme", ["support"])
    v1 = await stack.version("support")
    v2 = await stack.version("support")  # route moves to v2
    r = await stack.admin("DELETE", f"/admin/adapters/support/versions/{v2}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_routed"
    r = await stack.admin("DELETE", f"/admin/adapters/support/versions/{v1}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "retired" and body["drained"] and body["unloaded"]
    assert f"support--v{v1}" not in stack.replicas[0].loaded
    assert (await stack.chat(key, f"support@{v1}")).status_code == 404
    assert (await stack.chat(key, "support")).status_code == 200
    replicas = (await stack.admin("GET", "/admin/replicas")).json()["data"]
    assert replicas[0]["healthy"] and replicas[0]["loaded"] == [f"support--v{v2}"]


async def test_admin_calls_through_the_core_client(stack: Stack) -> None:
    """Every ``driftgate.core.admin_api`` call against the real gateway, async and blocking."""
    async with AsyncClient(stack.url, "admin-test-key") as admin:
        created = await admin.send(
            admin_api.create_tenant("acme", adapters=["support"], rate_limit_rps=0)
        )
        assert created["api_key"].startswith("dg-")
        path = make_peft_dir(stack.tmp, "via-client")
        v = await admin.send(admin_api.register_version("support", path, meta={"dataset": "d1"}))
        assert v["version"] == 1 and v["meta"]["dataset"] == "d1" and v["meta"]["rank"] == 8
        assert await admin.send(admin_api.set_route("support", {1: 1.0})) == {1: 1.0}
        assert await admin.send(admin_api.get_routes()) == {"support": {1: 1.0}}
        assert [t["name"] for t in await admin.send(admin_api.list_tenants())] == ["acme"]
        versions = await admin.send(admin_api.list_versions("support"))
        assert [x["state"] for x in versions] == ["ready"]
        with pytest.raises(ServiceRefused) as e:
            await admin.send(admin_api.retire_version("support", 1))
        assert e.value.status == 409 and e.value.code == "version_routed"
        bad = make_peft_dir(stack.tmp, "dora", use_dora=True)
        with pytest.raises(ServiceRefused, match="HTTP 400: DoRA") as e:
            await admin.send(admin_api.register_version("support", bad))
        assert e.value.code == "invalid_adapter" and e.value.body["error"]["param"] == "path"
        assert (await admin.send(admin_api.replicas()))[0]["healthy"]
        assert (await admin.send(admin_api.refresh()))["replicas_healthy"] == 1
        await admin.send(admin_api.delete_route("support"))
        retired = await admin.send(admin_api.retire_version("support", 1))
        assert retired["state"] == "retired"

    def blocking() -> str:
        with Client(stack.url, "admin-test-key") as gw:
            key = gw.send(admin_api.add_api_key("acme"))
            gw.send(admin_api.delete_tenant("acme"))
            with pytest.raises(ServiceRefused) as e:
                gw.send(admin_api.delete_tenant("acme"))
            assert e.value.status == 404
        with Client(stack.url, "wrong-key") as gw, pytest.raises(ServiceRefused) as e:
            gw.send(admin_api.list_tenants())
        assert e.value.status == 401 and e.value.code == "invalid_api_key"
        return key

    second = await asyncio.to_thread(blocking)
    assert (await stack.chat(created["api_key"], "support")).status_code == 401
    assert (await stack.chat(second, "support")).status_code == 401


async def test_training_tenants_are_set_and_shown_per_adapter(stack: Stack) -> None:
    """``PUT /admin/adapters/{a}/training-tenants`` replaces the opt-in list; the adapter's
    ``GET`` shows it with the versions; refusals are OpenAI-shaped and change nothing."""
    await stack.tenant("acme", ["support"])
    await stack.tenant("initech", ["billing"])
    v = await stack.version("support")
    r = await stack.admin("GET", "/admin/adapters/support")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "support" and body["training_tenants"] == []
    assert [x["version"] for x in body["versions"]] == [v]
    path = "/admin/adapters/support/training-tenants"
    r = await stack.admin("PUT", path, {"tenants": ["acme"]})
    assert r.status_code == 200 and r.json()["training_tenants"] == ["acme"], r.text
    for bad, status, code in (
        ({"tenants": ["nobody"]}, 404, "tenant_not_found"),
        ({"tenants": ["initech"]}, 400, "tenant_not_allowed"),
        ({"tenants": "acme"}, 422, None),
        ({"tenants": ["acme"], "extra": 1}, 422, None),
    ):
        r = await stack.admin("PUT", path, bad)
        assert r.status_code == status, r.text
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert code is None or r.json()["error"]["code"] == code
    r = await stack.admin("PUT", "/admin/adapters/unknown/training-tenants", {"tenants": []})
    assert r.status_code == 404 and r.json()["error"]["code"] == "adapter_not_found"
    assert (await stack.admin("GET", "/admin/adapters/unknown")).status_code == 404
    assert (await stack.admin("GET", "/admin/adapters/support")).json()["training_tenants"] == [
        "acme"
    ]
    async with AsyncClient(stack.url, "admin-test-key") as admin:
        assert await admin.send(admin_api.set_training_tenants("support", [])) == []
        got = await admin.send(admin_api.get_adapter("support"))
        assert got["training_tenants"] == []


async def test_gateway_writes_heartbeats(stack: Stack) -> None:
    """The app wires ``gateway.heartbeat``: one row per gateway with the applied routes."""
    import time

    from driftgate.core.state import StateStore
    from driftgate.core.state.heartbeats import read_beats, routes_hash

    await stack.tenant("acme", ["support"])
    v = await stack.version("support")
    store = StateStore(stack.settings.state_url)
    try:
        for _ in range(60):
            beats = read_beats(store.engine, time.time() - 5)
            if beats and beats[0]["routes_hash"] == routes_hash({"support": {v: 1.0}}):
                break
            await asyncio.sleep(0.1)
        assert len(beats) == 1
        assert beats[0]["routes_hash"] == routes_hash({"support": {v: 1.0}})
    finally:
        store.dispose()


async def test_a_malformed_admin_body_without_the_key_is_401_not_422(stack: Stack) -> None:
    # Found by the fuzz run: FastAPI parses the body before the route's key check ran.
    for headers in ({}, {"Authorization": "Bearer guess"}):
        r = await stack.client.post(
            stack.url + "/admin/tenants", content=b"{not json", headers=headers
        )
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = await stack.client.post(
        stack.url + "/admin/tenants", content=b"{not json", headers=stack.admin_headers
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/tenants", {"name": "t", "burst": 2**31}),
        ("POST", "/admin/tenants", {"name": "t", "max_tokens": 2**63}),
        ("POST", "/admin/adapters/a/versions", {"path": "/x", "version": 2**31}),
        ("PUT", "/admin/routes/a", {"weights": {str(2**31): 1.0}}),
        ("DELETE", "/admin/adapters/a/versions/9223372036854775808", None),
    ],
)
async def test_a_number_too_large_for_its_column_is_422_not_500(
    stack: Stack, method: str, path: str, body: object
) -> None:
    # Found by the fuzz run: past 2**63 SQLite's insert fails (a 500); PostgreSQL's
    # INTEGER columns end at 2**31 - 1.
    r = await stack.admin(method, path, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
