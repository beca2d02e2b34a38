"""Admin API for one tenant's keys: issue (optionally expiring), list, revoke one.

``POST/GET /admin/tenants/{name}/keys``, ``DELETE /admin/tenants/{name}/keys/{key_id}``;
the gateway's clock is injected, so expiry is tested without sleeping.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from driftgate.core import admin_api
from driftgate.core.client import AsyncClient
from tests.gateway.conftest import ADMIN_KEY, Stack, StackFactory


class Clock:
    """A clock the test moves: Unix seconds, starting now."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def models(stack: Stack, key: str) -> int:
    """Status of ``GET /v1/models`` with ``key``: a tenant route that needs no engine."""
    r = await stack.client.get(stack.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
    return r.status_code


def openai_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return dict(err)


async def test_a_key_with_expiry_works_until_then_and_is_listed_without_secrets(
    make_stack: StackFactory,
) -> None:
    clock = Clock()
    stack = await make_stack(clock=clock)
    first = await stack.tenant("acme", ["*"])
    r = await stack.admin("POST", "/admin/tenants/acme/keys", {"expires_in_s": 60})
    assert r.status_code == 201, r.text
    issued = r.json()
    short = issued["api_key"]
    assert issued["expires_at"] == pytest.approx(clock.now + 60)
    assert issued["key_id"].startswith("key_") and issued["prefix"] == short[:8]
    assert await models(stack, short) == 200

    listed = (await stack.admin("GET", "/admin/tenants/acme/keys")).json()["data"]
    assert [k["key_id"] for k in listed][1] == issued["key_id"]
    assert [(k["expires_at"] is None, k["expired"]) for k in listed] == [
        (True, False),
        (False, False),
    ]
    for k in listed:
        assert set(k) == {"key_id", "tenant", "prefix", "created_at", "expires_at", "expired"}
    text = str(listed)
    assert first not in text and short not in text and "hash" not in text

    clock.now += 60
    err = openai_error(
        await stack.client.get(
            stack.url + "/v1/models", headers={"Authorization": f"Bearer {short}"}
        ),
        401,
    )
    assert err["code"] == "invalid_api_key" and "expired" in err["message"]
    assert await models(stack, first) == 200  # the tenant's key without expiry still works
    listed = (await stack.admin("GET", "/admin/tenants/acme/keys")).json()["data"]
    assert [k["expired"] for k in listed] == [False, True]


async def test_no_body_keeps_the_key_without_expiry(make_stack: StackFactory) -> None:
    clock = Clock()
    stack = await make_stack(clock=clock)
    await stack.tenant("acme", ["*"])
    r = await stack.admin("POST", "/admin/tenants/acme/keys")
    assert r.status_code == 201 and r.json()["expires_at"] is None
    r2 = await stack.admin("POST", "/admin/tenants/acme/keys", {"expires_in_s": None})
    assert r2.status_code == 201 and r2.json()["expires_at"] is None
    clock.now += 100 * 365 * 86400
    assert await models(stack, r.json()["api_key"]) == 200


async def test_a_tenants_first_key_may_expire(make_stack: StackFactory) -> None:
    clock = Clock()
    stack = await make_stack(clock=clock)
    r = await stack.admin(
        "POST", "/admin/tenants", {"name": "trial", "adapters": ["*"], "key_expires_in_s": 3600}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_at"] == pytest.approx(clock.now + 3600)
    listed = (await stack.admin("GET", "/admin/tenants/trial/keys")).json()["data"]
    assert [k["key_id"] for k in listed] == [body["key_id"]]
    assert await models(stack, body["api_key"]) == 200
    clock.now += 3600
    assert await models(stack, body["api_key"]) == 401


async def test_revoking_one_key_leaves_the_others(stack: Stack) -> None:
    first = await stack.tenant("acme", ["*"])
    r = await stack.admin("POST", "/admin/tenants/acme/keys")
    second, second_id = r.json()["api_key"], r.json()["key_id"]
    r = await stack.admin("DELETE", f"/admin/tenants/acme/keys/{second_id}")
    assert r.status_code == 204 and r.content == b""
    assert await models(stack, second) == 401  # at once, on this gateway
    assert await models(stack, first) == 200
    listed = (await stack.admin("GET", "/admin/tenants/acme/keys")).json()["data"]
    assert second_id not in [k["key_id"] for k in listed] and len(listed) == 1
    # revoked twice: the id is unknown now
    err = openai_error(await stack.admin("DELETE", f"/admin/tenants/acme/keys/{second_id}"), 404)
    assert err["code"] == "key_not_found"


async def test_unknown_keys_and_tenants_are_404(stack: Stack) -> None:
    await stack.tenant("acme", ["*"])
    globex = await stack.tenant("globex", ["*"])
    globex_id = (await stack.admin("GET", "/admin/tenants/globex/keys")).json()["data"][0]["key_id"]
    for path in ("/admin/tenants/acme/keys/key_0000000000000000", "/admin/tenants/acme/keys/x"):
        assert openai_error(await stack.admin("DELETE", path), 404)["code"] == "key_not_found"
    # another tenant's key id, named under the wrong tenant: 404, and it keeps working
    r = await stack.admin("DELETE", f"/admin/tenants/acme/keys/{globex_id}")
    assert openai_error(r, 404)["code"] == "key_not_found"
    assert await models(stack, globex) == 200
    for method, path in (
        ("GET", "/admin/tenants/nobody/keys"),
        ("POST", "/admin/tenants/nobody/keys"),
        ("DELETE", f"/admin/tenants/nobody/keys/{globex_id}"),
    ):
        assert openai_error(await stack.admin(method, path), 404)["code"] == "tenant_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_s": 0},
        {"expires_in_s": -5},
        {"expires_in_s": "60"},
        {"expires_in_s": True},
        {"expires_in_s": 1e12},  # past the 10-year limit
        {"expires_at": 2e9},  # not a field: the lifetime is relative, on the gateway's clock
        {"expires_in_s": 60, "extra": 1},
        [60],
    ],
)
async def test_bad_expiry_values_are_refused(stack: Stack, body: Any) -> None:
    await stack.tenant("acme", ["*"])
    err = openai_error(await stack.admin("POST", "/admin/tenants/acme/keys", body), 422)
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_body"
    r = await stack.admin("POST", "/admin/tenants", {"name": "t2", "key_expires_in_s": body})
    openai_error(r, 422)
    assert len((await stack.admin("GET", "/admin/tenants/acme/keys")).json()["data"]) == 1


async def test_non_finite_expiry_and_broken_json_are_refused(stack: Stack) -> None:
    await stack.tenant("acme", ["*"])
    headers = {**stack.admin_headers, "Content-Type": "application/json"}
    for raw in (b'{"expires_in_s": NaN}', b'{"expires_in_s": Infinity}', b'{"expires_in_s": '):
        r = await stack.client.post(
            stack.url + "/admin/tenants/acme/keys", content=raw, headers=headers
        )
        assert r.status_code in (400, 422), r.text
        openai_error(r, r.status_code)
    assert len((await stack.admin("GET", "/admin/tenants/acme/keys")).json()["data"]) == 1


@pytest.mark.parametrize("auth", [None, "Bearer wrong-admin-key", "Bearer dg-tenant"])
async def test_key_routes_need_the_admin_key(stack: Stack, auth: str | None) -> None:
    """No admin key, a wrong one, or a tenant's key: 401, nothing issued or revoked."""
    key = await stack.tenant("acme", ["*"])
    key_id = (await stack.admin("GET", "/admin/tenants/acme/keys")).json()["data"][0]["key_id"]
    auth = auth.replace("dg-tenant", key) if auth else None
    headers = {"Authorization": auth} if auth else {}
    for method, path, body in (
        ("GET", "/admin/tenants/acme/keys", None),
        ("POST", "/admin/tenants/acme/keys", None),
        ("POST", "/admin/tenants/acme/keys", {"expires_in_s": 60}),
        ("DELETE", f"/admin/tenants/acme/keys/{key_id}", None),
    ):
        r = await stack.client.request(method, stack.url + path, json=body, headers=headers)
        err = openai_error(r, 401)
        assert err["type"] == "authentication_error"
        assert '"api_key":' not in r.text and "key_" not in r.text  # nothing issued or listed
    assert len((await stack.admin("GET", "/admin/tenants/acme/keys")).json()["data"]) == 1
    assert await models(stack, key) == 200


async def test_key_calls_through_the_core_client(make_stack: StackFactory) -> None:
    clock = Clock()
    stack = await make_stack(clock=clock)
    async with AsyncClient(stack.url, ADMIN_KEY) as admin:
        created = await admin.send(
            admin_api.create_tenant("acme", adapters=["*"], key_expires_in_s=30)
        )
        assert created["expires_at"] == pytest.approx(clock.now + 30)
        extra = await admin.send(admin_api.add_api_key("acme", expires_in_s=90))
        forever = await admin.send(admin_api.add_api_key("acme"))
        listed = await admin.send(admin_api.list_api_keys("acme"))
        assert [k["prefix"] for k in listed] == [created["api_key"][:8], extra[:8], forever[:8]]
        await admin.send(admin_api.revoke_api_key("acme", listed[1]["key_id"]))
    assert await models(stack, extra) == 401
    assert await models(stack, forever) == 200
    clock.now += 30
    assert await models(stack, created["api_key"]) == 401
