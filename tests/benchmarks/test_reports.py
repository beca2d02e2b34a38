"""The areas' figures: ``met`` follows the measured numbers, and documents check out."""

from __future__ import annotations

from typing import Any

from benchmarks.retrain.report import figures as retrain_figures
from benchmarks.serving.load import RequestSample, summarize
from benchmarks.serving.report import details_md as serving_md
from benchmarks.serving.report import figures as serving_figures
from benchmarks.serving.report import order_effect as serving_order_effect
from benchmarks.suite.contract import check_document, document
from benchmarks.swap.report import figures as swap_figures


def _doc(area: str, figures: list[dict[str, Any]]) -> dict[str, Any]:
    return document(
        area=area, title="t", command="c", quick=False, loadavg_before=[1.0],
        figures=figures, details_md="",
    )  # fmt: skip


def _cell(tok: float, ttft: float | None, failed: int = 0) -> dict[str, Any]:
    return {"tok_per_s": tok, "ttft_p50_s": ttft, "failed": failed}


def _by_name(figures: list[dict[str, Any]], start: str) -> dict[str, Any]:
    return next(f for f in figures if f["name"].startswith(start))


def test_serving_ratios_decide_met() -> None:
    rows = [
        {"mix": "base", "concurrency": 1, "direct": _cell(10, 0.2), "gateway": _cell(9.8, 0.205)},
        {
            "mix": "1 adapter",
            "concurrency": 4,
            "direct": _cell(30, 1),
            "gateway": _cell(24, 1.5, 1),
        },
    ]
    figs = serving_figures(rows)
    assert check_document(_doc("serving", figs)) == []
    base = _by_name(figs, "tokens/s through the gateway, base, 1")
    assert (base["ratio"], base["met"]) == (0.98, True)
    lora = _by_name(figs, "tokens/s through the gateway, 1 adapter, 4")
    assert (lora["ratio"], lora["met"]) == (0.8, False)
    assert _by_name(figs, "time to first token p50, base")["met"] is True
    assert _by_name(figs, "time to first token p50, 1 adapter")["met"] is False
    failed = _by_name(figs, "failed requests")
    assert (failed["value"], failed["met"]) == (1, False)
    md = serving_md(rows, 8)
    assert (
        "| 1 adapter | 4 | gateway | 30.0 | 24.0 | 0.80 | 1,000 | 1,500 | 1.50 | 0/1 | - (-) | - |"
        in md
    )
    # the one single-request cell (started by direct) had its higher TTFT on the gateway
    assert "the higher TTFT p50 in 0 of 1 cells" in md


def test_serving_table_shows_the_gateway_side_cpu_share_and_cost_per_token() -> None:
    row = {
        "mix": "base",
        "concurrency": 16,
        "rounds": 2,
        "direct": _cell(50, 2.5) | {"wall_s": 20.0, "tokens": 1000},
        "gateway": _cell(40, 2.6) | {"wall_s": 25.0, "tokens": 1000},
        "gateway_side_cpu_s": {"gateway": 5.0, "direct": 0.2},
    }
    md = serving_md([row], 32)
    assert "| 0/0 | 20% (1%) | 5.00 |" in md  # 5 s over 25 s; 0.2 over 20; 5,000 ms / 1,000
    assert "2 time(s) each in ABBA order" in md


def test_serving_order_effect_counts_cells_whose_first_path_was_slower() -> None:
    def row(first: str, direct: float, gateway: float, conc: int = 1) -> dict[str, Any]:
        return {
            "mix": "base",
            "concurrency": conc,
            "first": first,
            "direct": _cell(5, direct),
            "gateway": _cell(5, gateway),
        }

    rows = [row("direct", 0.9, 0.8), row("gateway", 0.7, 0.8), row("direct", 0.5, 0.6)]
    rows.append(row("gateway", 9.0, 1.0, conc=16))  # not a single-request cell
    assert "in 2 of 3 cells" in serving_order_effect(rows)


def test_serving_cell_summary_counts_tokens_over_wall_time() -> None:
    samples = [
        RequestSample(model="m", start=0.0, first_token=0.5, end=2.0, tokens=10),
        RequestSample(model="m", start=1.0, first_token=1.1, end=4.0, tokens=10),
        RequestSample(model="m", start=1.0, end=1.5, error="HTTP 500"),
    ]
    r = summarize(samples)
    assert (r.requests, r.failed, r.tokens, r.wall_s, r.tok_per_s) == (3, 1, 20, 4.0, 5.0)
    again = [RequestSample(model="m", start=10.0, first_token=10.2, end=14.0, tokens=20)]
    both = summarize(samples, again)  # two runs: walls add up, TTFTs pool
    assert (both.runs, both.requests, both.tokens, both.wall_s, both.tok_per_s) == (
        2,
        4,
        40,
        8.0,
        5.0,
    )
    assert both.ttft_p50_s == 0.2
    assert r.ttft_p50_s == 0.3  # median of 0.5 and 0.1
    assert r.errors == ["HTTP 500"]


def _swap_run(route_s: float, failed: int = 0) -> dict[str, Any]:
    return {
        "requests": 24, "failed": failed, "ambiguous": 0, "misrouted": 0,
        "promote_to_route_s": route_s, "promote_to_unloaded_s": 9.0,
    }  # fmt: skip


def test_swap_takes_the_worst_run_against_the_target() -> None:
    figs = swap_figures([_swap_run(0.4), _swap_run(1.2)])
    assert check_document(_doc("swap", figs)) == []
    route = _by_name(figs, "promote -> 100%")
    assert (route["value"], route["met"]) == (1.2, True)
    figs = swap_figures([_swap_run(0.4), _swap_run(6.0, failed=2)])
    assert _by_name(figs, "promote -> 100%")["met"] is False
    failed = _by_name(figs, "failed requests")
    assert (failed["value"], failed["met"]) == (2, False)


def test_retrain_targets_the_300_example_run_and_keeps_failed_sizes() -> None:
    ok = {"size": 300, "wall_s": 400.0, "peak_rss_mb": 2100}
    figs = retrain_figures([ok, {"size": 1000, "error": "Traceback ... MemoryError"}])
    assert check_document(_doc("retrain", figs)) == []
    wall = _by_name(figs, "wall time, 300")
    assert (wall["value"], wall["met"], wall["target"]) == (400.0, False, "<= 360 s")
    big = _by_name(figs, "wall time, 1,000")
    assert big["value"] is None and big["met"] is None
    assert big["note"] == "failed: Traceback ... MemoryError"
