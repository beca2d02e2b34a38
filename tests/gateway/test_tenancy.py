"""Isolation matrix: no tenant reaches another tenant's adapter by any route.

Routes tried per tenant: the logical name, every pinned version, the vLLM LoRA
name, on both endpoints, and ``/v1/models``. Upstream: the fake vLLM.
"""

from __future__ import annotations

import pytest

from tests.gateway.conftest import BASE, Stack

ADAPTERS = ("support", "billing")


@pytest.mark.timeout(120)
async def test_isolation_matrix(stack: Stack) -> None:
    keys = {
        "t_support": (await stack.tenant("t_support", ["support"]), {"support"}),
        "t_billing": (await stack.tenant("t_billing", ["billing"]), {"billing"}),
        "t_all": (await stack.tenant("t_all", ["*"]), {"support", "billing"}),
        "t_none": (await stack.tenant("t_none", []), set()),
    }
    versions = {}
    for a in ADAPTERS:
        await stack.version(a)
        versions[a] = [1, await stack.version(a)]  # two versions each, route on the newest
    names = [BASE]
    for a in ADAPTERS:
        names += [a, *(f"{a}@{v}" for v in versions[a]), f"{a}--v1"]
    checked = 0
    for tenant, (key, allowed) in keys.items():
        for model in names:
            adapter = model.split("@")[0]
            if model == BASE:
                want = 200
            elif "--" in model:
                want = 404  # vLLM names are never accepted from clients
            else:
                want = 200 if adapter in allowed else 403
            for path, body in (
                ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
                ("/v1/completions", {"prompt": "hi"}),
            ):
                r = await stack.client.post(
                    stack.url + path,
                    json={"model": model, **body},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == want, (tenant, model, path, r.text)
                if want == 200:
                    served = stack.replicas[0].requests[-1]["model"]
                    assert served == BASE or served.split("--")[0] in allowed
                checked += 1
        r = await stack.client.get(
            stack.url + "/v1/models", headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200
        listed = {m["id"] for m in r.json()["data"]}
        assert listed == {BASE, *allowed}, tenant
    assert checked == len(keys) * len(names) * 2
    # every request that reached the engine named an adapter its tenant may use
    for body in stack.replicas[0].requests:
        model = str(body["model"])
        assert model == BASE or model.split("--")[0] in ADAPTERS
    r = await stack.client.get(stack.url + "/v1/models")
    assert r.status_code == 401
