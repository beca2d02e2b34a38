"""A LoRA name of ours that vLLM already holds from another path is never taken as ours.

Versions are served under never-reused names (``support--v2``), so whoever can reach vLLM
before the gateway loads the next version could pre-load their own weights under that
name; vLLM then answers the gateway's load with "already loaded". The fake engine stands in
for vLLM (it answers "already loaded" and lists each LoRA's path as ``root``, as vLLM's
``/v1/models`` does); the real gateway runs over a real socket.
"""

from __future__ import annotations

from tests.gateway.conftest import Stack, StackFactory, make_peft_dir


async def test_a_preloaded_name_from_another_path_fails_the_version(
    make_stack: StackFactory,
) -> None:
    s: Stack = await make_stack()
    await s.version("support")  # v1, routed
    engine = s.replicas[0]
    evil = make_peft_dir(s.tmp, "attacker-weights")
    engine.loaded["support--v2"] = evil  # pre-loaded behind the gateway's back
    ours = make_peft_dir(s.tmp, "support-v2")
    r = await s.admin("POST", "/admin/adapters/support/versions", {"path": ours})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "adapter_load_failed" and "already holds" in error["message"], error
    versions = (await s.admin("GET", "/admin/adapters?adapter=support")).json()["data"]
    assert [(v["version"], v["state"]) for v in versions] == [(1, "ready"), (2, "failed")]
    # the failed version cannot be routed to, so the attacker's weights serve nobody
    r = await s.admin("PUT", "/admin/routes/support", {"weights": {"2": 1.0}})
    assert r.status_code == 409
    replica = engine.url.removeprefix("http://")
    assert s.metric("driftgate_gateway_adapter_loads_total", replica=replica, outcome="failed") == 1


async def test_a_retried_load_of_the_same_path_is_ours(make_stack: StackFactory) -> None:
    """The benign case: the gateway's own earlier load (same name, same path) is accepted."""
    s: Stack = await make_stack()
    path = make_peft_dir(s.tmp, "support-v1")
    s.replicas[0].loaded["support--v1"] = path
    r = await s.admin("POST", "/admin/adapters/support/versions", {"path": path})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "ready"
