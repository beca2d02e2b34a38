"""A tenant cannot reach another tenant's adapter by any route (matrix, real stack)."""

from __future__ import annotations

import httpx
import pytest

from tests.live import BASE_MODEL, LiveStack

pytestmark = pytest.mark.e2e

ALLOWED = {"acme": {"support"}, "globex": {"greeter"}, "all": {"support", "greeter"}}


def _model_names(adapter: str) -> list[str]:
    # Every way a client could name an adapter: logical, pinned, and the raw vLLM LoRA name.
    return [adapter, f"{adapter}@1", f"{adapter}--v1"]


@pytest.mark.parametrize("tenant", sorted(ALLOWED))
@pytest.mark.parametrize("adapter", ["support", "greeter"])
@pytest.mark.parametrize("endpoint", ["chat/completions", "completions"])
def test_access_matrix(live_stack: LiveStack, tenant: str, adapter: str, endpoint: str) -> None:
    headers = {"Authorization": f"Bearer {live_stack.keys[tenant]}"}
    for model in _model_names(adapter):
        body: dict[str, object] = {"model": model, "max_tokens": 2, "temperature": 0}
        if endpoint == "chat/completions":
            body["messages"] = [{"role": "user", "content": "hi"}]
        else:
            body["prompt"] = "hi"
        r = httpx.post(
            f"{live_stack.gateway_url}/v1/{endpoint}", headers=headers, json=body, timeout=60
        )
        raw_lora = "--" in model
        if adapter in ALLOWED[tenant] and not raw_lora:
            assert r.status_code == 200, (tenant, model, r.text)
        else:
            # Raw LoRA names are never a public model name; others' adapters are forbidden.
            assert r.status_code in (403, 404), (tenant, model, r.status_code, r.text)
            err = r.json()["error"]
            assert err["type"] in ("permission_error", "invalid_request_error")
            assert set(err) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("tenant", sorted(ALLOWED))
def test_models_listing_per_tenant(live_stack: LiveStack, tenant: str) -> None:
    r = httpx.get(
        f"{live_stack.gateway_url}/v1/models",
        headers={"Authorization": f"Bearer {live_stack.keys[tenant]}"},
        timeout=30,
    )
    assert r.status_code == 200
    ids = {m["id"] for m in r.json()["data"]}
    assert ids == {BASE_MODEL} | ALLOWED[tenant]
    assert not any("--" in i for i in ids), "internal LoRA names must not leak"
