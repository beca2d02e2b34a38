"""Sample result documents for the suite's tests."""

from __future__ import annotations

from typing import Any

from benchmarks.suite.contract import document, figure


def gateway_doc(*, rps: float = 1500.0, quick: bool = False) -> dict[str, Any]:
    return document(
        area="gateway",
        title="Gateway throughput",
        command=".venv/bin/python -m benchmarks.gateway.run",
        quick=quick,
        loadavg_before=[0.5, 0.5, 0.5],
        figures=[
            figure(
                "req/s at saturation on one core",
                rps,
                "req/s",
                reference="LiteLLM proxy (1 worker)",
                reference_value=60.0,
                target=">= 1,400 req/s",
                met=rps >= 1400,
            ),
            figure("added p50 latency at c1", 1.1, "ms"),
        ],
        details_md="### Throughput\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        plots=["benchmarks/gateway/latency_vs_load.png"],
    )
