"""Hot swap under load on the real stack: real vLLM, real gateway (with heartbeats), real
drift service running the rollout controller.

8 concurrent clients (streaming and not) call the logical adapter ``swap`` while
version 2 is loaded, canaried, promoted and version 1 drained and unloaded.

No check here reads a wall clock against a limit: the canary share is a binomial
test on a fixed-size sample, and the promotion is checked as an order of events
(decision, route change, requests) and by the gateway's own heartbeat.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.swap.load import run_swap
from driftgate.engine import EngineProcess
from driftgate.settings import EngineSettings, StackSettings
from driftgate.stack import Stack, create_tenant, stack_services
from tests.live import FixtureAdapter, adapter_roots_env, free_port

pytestmark = pytest.mark.e2e

#: The canary weight of the rollout under test, and the size of the canary sample.
CANARY_WEIGHT = 0.25
CANARY_SAMPLE = 32
#: Most accepted chance that a canary routing at exactly CANARY_WEIGHT fails the check.
FALSE_FAILURE = 1e-3


def binomial_acceptance(n: int, p: float, alpha: float) -> tuple[int, int, float]:
    """The narrowest region ``[lo, hi]`` with ``P(X < lo) <= alpha/2`` and
    ``P(X > hi) <= alpha/2`` for ``X ~ Binomial(n, p)``, and its exact false-failure
    chance ``P(X < lo) + P(X > hi)`` (<= alpha).

    >>> binomial_acceptance(32, 0.25, 1e-3)[:2]
    (1, 17)
    """
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo, below = 0, 0.0
    while below + pmf[lo] <= alpha / 2:
        below += pmf[lo]
        lo += 1
    hi, above = n, 0.0
    while above + pmf[hi] <= alpha / 2:
        above += pmf[hi]
        hi -= 1
    return lo, hi, below + above


@dataclasses.dataclass
class SwapStack:
    gateway_url: str
    drift_url: str
    engine_url: str
    admin_key: str
    key: str
    engine_headers: dict[str, str]

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


def swap_services(
    engine_url: str, engine_headers: dict[str, str], home: Path
) -> tuple[Stack, SwapStack]:
    """Drift (with the rollout controller) and gateway (with heartbeats) on free ports."""
    settings = StackSettings(
        home=home,
        start_engine=False,
        upstreams=[engine_url],
        drift_port=free_port(),
        gateway_port=free_port(),
    )
    env = {**os.environ, **adapter_roots_env(home), "DRIFTGATE_DRIFT_TRIGGER_MODE": "off"}
    config = stack_services(settings, EngineSettings(), base_env=env)
    specs = []
    for spec in config.services:
        extra = {}
        if spec.name == "drift":
            extra = {
                "DRIFTGATE_GATEWAY_URL": config.urls.gateway,
                "DRIFTGATE_ADMIN_KEY": config.admin_key,
                "DRIFTGATE_ROLLOUT_INTERVAL_S": "0.25",
                "DRIFTGATE_ROLLOUT_MAX_LOADED": "8",
            }
        specs.append(
            dataclasses.replace(
                spec,
                env={**(spec.env or {}), **extra},
            )
        )
    stack = Stack(specs, log_dir=config.log_dir)
    stack.start()
    try:
        _, key = create_tenant(config.urls.gateway, config.admin_key, "swapper", ["swap"])
    except BaseException:
        stack.stop()
        raise
    urls = config.urls
    return stack, SwapStack(
        urls.gateway, urls.drift, engine_url, config.admin_key, key, engine_headers
    )


@pytest.fixture
def swap_stack(engine: EngineProcess, tmp_path: Path) -> Iterator[SwapStack]:
    stack, live = swap_services(engine.base_url, engine.headers, tmp_path / "home")
    try:
        yield live
    finally:
        stack.stop()


def test_swap_under_load_drops_nothing_and_routes_exactly(
    swap_stack: SwapStack, fixture_adapters: dict[str, FixtureAdapter], tmp_path: Path
) -> None:
    """Zero failed or misrouted requests; the canary share and the promotion, soundly.

    Canary share: the harness holds the canary until the first ``CANARY_SAMPLE`` = 32
    requests that started after the canary began have finished (``canary_sample``);
    which requests those are is fixed before the gateway draws their versions, and
    each draw is an independent ``random.random()`` against the route weights, so
    the number K answered by the candidate is Binomial(32, w) for the rollout's
    canary weight w = 0.25. The check accepts 1 <= K <= 17:
    P(K = 0) = 0.75^32 = 1.00e-4 and P(K >= 18) = 1.60e-4, so a correct canary fails
    it with chance 2.61e-4 < 1e-3 (``binomial_acceptance``; narrowing either side by
    one would exceed 5e-4 in that tail: P(K <= 1) = 1.17e-3, P(K >= 17) = 6.00e-4).
    It fails for sure when the candidate gets no canary traffic or all of it, and
    with chance 0.994 when the two weights are swapped (K ~ Binomial(32, 0.75)).

    Promotion: ordered events, not seconds. The operator's decision comes before the
    controller records ``promoted``, the 100% route is set before it records
    ``draining``; every request that started after that record got the new version
    (the only gateway applies a route change before it answers the controller's
    ``PUT /admin/routes``, so zero ``state_refresh_s`` periods of slack are due), and
    there were such requests. The drain ended because the gateway's heartbeat showed
    the new route table and nothing in flight on version 1, not by a timeout.
    """
    s = swap_stack
    admin = httpx.Client(
        base_url=s.gateway_url, headers={"Authorization": f"Bearer {s.admin_key}"}, timeout=60
    )
    with admin:
        r = admin.post(
            "/admin/adapters/swap/versions",
            json={"path": str(fixture_adapters["support"].path), "version": 1},
        )
        assert r.status_code == 201, r.text
        assert admin.put("/admin/routes/swap", json={"weights": {"1": 1.0}}).status_code == 200
    report = asyncio.run(
        run_swap(
            gateway_url=s.gateway_url,
            drift_url=s.drift_url,
            admin_key=s.admin_key,
            tenant_key=s.key,
            adapter="swap",
            candidate_path=str(fixture_adapters["greeter"].path),
            clients=8,
            canary_weight=CANARY_WEIGHT,
            canary_min=0,  # a stop that waits for candidate answers would bias the sample
            canary_sample=CANARY_SAMPLE,
            timeout_s=600.0,
        )
    )
    print(json.dumps({k: v for k, v in report.items() if k != "transitions"}, indent=2))
    if out := os.environ.get("DRIFTGATE_SWAP_REPORT"):  # keep the numbers of this run
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    assert report["failed"] == 0, report["failures"]
    assert report["ambiguous"] == 0
    assert report["misrouted"] == 0
    assert report["outcome"] == "promoted"
    # The canary's share of traffic matches its configured weight (see the docstring).
    assert report["canary_weight"] == CANARY_WEIGHT
    sample = report["canary_sample"]
    assert sample["n"] == sample["ok"] == CANARY_SAMPLE, sample
    assert sample["on_candidate"] + sample["on_serving"] == CANARY_SAMPLE, sample
    lo, hi, false_failure = binomial_acceptance(CANARY_SAMPLE, CANARY_WEIGHT, FALSE_FAILURE)
    assert false_failure < FALSE_FAILURE
    assert lo <= sample["on_candidate"] <= hi, (
        f"{sample['on_candidate']} of {CANARY_SAMPLE} canary requests on the candidate;"
        f" weight {CANARY_WEIGHT} allows {lo}..{hi}"
    )
    # The promotion, as an order of events.
    moves = [(t["to"], t["ts"]) for t in report["transitions"]]
    order = ["candidate", "loading", "canary", "promoted", "draining", "unloaded"]
    assert [m for m, _ in moves] == order, moves
    assert [ts for _, ts in moves] == sorted(ts for _, ts in moves), moves
    ts = dict(moves)
    decided = ts["draining"] - report["promote_to_route_s"]  # the operator's promote call
    assert decided < ts["promoted"] < ts["draining"], (decided, moves)
    after = report["after_route"]
    assert after["requests"] > 0 and after["on_old"] == 0, after
    assert report["transitions"][-1]["reason"].startswith("drained: "), report["transitions"][-1]
    models = httpx.get(f"{s.engine_url}/v1/models", headers=s.engine_headers, timeout=10).json()[
        "data"
    ]
    loaded = {m["id"] for m in models}
    assert "swap--v2" in loaded and "swap--v1" not in loaded
    # A corrupt adapter (valid config, garbage weights) is refused by the real engine at
    # loading: the rollout fails with the engine's reason and serving is untouched.
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    shutil.copy(fixture_adapters["greeter"].path / "adapter_config.json", corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file" * 64)
    with httpx.Client(timeout=60) as http:
        r = http.post(
            f"{s.drift_url}/v1/rollouts",
            json={"adapter": "swap", "path": str(corrupt)},
            headers={"Authorization": f"Bearer {s.admin_key}"},
        )
        assert r.status_code == 201, r.text
    reason = _wait_failed(s, int(r.json()["id"]))
    assert "refused" in reason, reason
    models = httpx.get(f"{s.engine_url}/v1/models", headers=s.engine_headers, timeout=10).json()[
        "data"
    ]
    assert "swap--v3" not in {m["id"] for m in models}
    chat = httpx.post(
        f"{s.gateway_url}/v1/chat/completions",
        json={"model": "swap", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        headers={"Authorization": f"Bearer {s.key}"},
        timeout=120,
    )
    assert chat.status_code == 200 and chat.json()["model"] == "swap@2"


def _wait_failed(s: SwapStack, rid: int) -> str:
    deadline = time.monotonic() + 60
    while True:
        info = httpx.get(
            f"{s.drift_url}/v1/rollouts/{rid}", headers=s.admin_headers, timeout=10
        ).json()
        if info["state"] == "failed":
            return str(info["reason"])
        assert info["state"] in ("candidate", "loading"), info
        assert time.monotonic() < deadline, info
        time.sleep(0.2)
