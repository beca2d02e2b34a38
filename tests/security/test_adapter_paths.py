"""Issue 15, part 5: adapter names are matched whole, adapter paths stay in the registry.

Over real sockets: the real gateway (uvicorn) in front of the gateway tests' fake vLLM
(``tests/gateway/fake_vllm.py``), and the real drift service with the rollout API. No
attack here needs generated text: the fake records what it was asked to load, which is
how "nothing was loaded" is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gateway.conftest import (  # noqa: F401 (fixture)
    Stack,
    StackFactory,
    make_peft_dir,
    make_stack,
)
from tests.security.drift_service import drift_service


def not_allowed(path: str) -> dict[str, Any]:
    return {
        "error": {
            "message": f"adapter path {path!r} is outside the adapter registry",
            "type": "invalid_request_error",
            "param": "path",
            "code": "adapter_path_not_allowed",
        }
    }


def escapes(tmp: Path, registry: Path) -> list[str]:
    """Servable adapter directories outside ``registry``, reached three ways."""
    outside = Path(make_peft_dir(tmp, "outside"))
    (registry / "support").mkdir(parents=True, exist_ok=True)
    (registry / "support" / "9").symlink_to(outside, target_is_directory=True)
    return [
        str(outside),  # plainly elsewhere
        str(registry / "support" / "9"),  # a link inside the registry pointing out
        f"{registry}/support/../../outside",  # climbing out with ..
    ]


def linked_version(registry: Path) -> tuple[str, str]:
    """A version directory in the registry and a link to it, also in the registry."""
    inside = Path(make_peft_dir(registry / "support", "1"))
    (registry / "current").symlink_to(inside, target_is_directory=True)
    return str(registry / "current"), str(inside.resolve())


async def test_a_version_path_outside_the_registry_is_refused(
    make_stack: StackFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    registry = tmp_path / "registry"
    s: Stack = await make_stack(adapter_roots=[registry])
    for path in escapes(tmp_path, registry):
        r = await s.admin("POST", "/admin/adapters/support/versions", {"path": path})
        assert r.status_code == 400 and r.json() == not_allowed(path), path
    assert (await s.admin("GET", "/admin/adapters")).json() == {"data": []}
    assert s.replicas[0].loaded == {}
    # Inside the registry it works, and the resolved path is what is stored and loaded.
    link, resolved = linked_version(registry)
    r = await s.admin("POST", "/admin/adapters/support/versions", {"path": link})
    assert r.status_code == 201, r.text
    assert r.json()["path"] == resolved
    assert s.replicas[0].loaded == {"support--v1": resolved}


async def test_a_rollout_path_outside_the_registry_is_refused(tmp_path: Path) -> None:
    async with drift_service(tmp_path) as d:
        for path in escapes(tmp_path, d.registry):
            r = await d.client.post(
                d.url + "/v1/rollouts",
                json={"adapter": "support", "path": path},
                headers=d.admin_headers,
            )
            assert r.status_code == 400 and r.json() == not_allowed(path), path
        assert await d.rollouts() == []


async def test_an_adapter_name_with_a_trailing_newline_is_refused(
    make_stack: StackFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    s: Stack = await make_stack()
    path = make_peft_dir(tmp_path, "good")
    r = await s.admin("POST", "/admin/adapters/support%0A/versions", {"path": path})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "message": "invalid adapter name 'support\\n'",
            "type": "invalid_request_error",
            "param": "adapter",
            "code": None,
        }
    }
    r = await s.admin("POST", "/admin/tenants", {"name": "acme", "adapters": ["support\n"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "adapters"
    r = await s.admin("PUT", "/admin/routes/support%0A", {"weights": {"1": 1.0}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "adapter"
    assert (await s.admin("GET", "/admin/adapters")).json() == {"data": []}
    assert (await s.admin("GET", "/admin/tenants")).json() == {"data": []}
    assert s.replicas[0].loaded == {}
    # As a model name: no such model, and the engine is never asked.
    key = await s.tenant("acme", ["support"])
    await s.version("support")
    for model in ("support\n", "support@1\n"):
        r = await s.chat(key, model)
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert s.replicas[0].requests == []


async def test_a_rollout_for_an_adapter_name_with_a_trailing_newline_is_refused(
    tmp_path: Path,
) -> None:
    async with drift_service(tmp_path) as d:
        path = make_peft_dir(d.registry, "support-2")
        r = await d.client.post(
            d.url + "/v1/rollouts",
            json={"adapter": "support\n", "path": path},
            headers=d.admin_headers,
        )
        assert r.status_code == 400
        assert r.json()["error"] == {
            "message": "invalid adapter name 'support\\n'",
            "type": "invalid_request_error",
            "param": "adapter",
            "code": None,
        }
        assert await d.rollouts() == []
