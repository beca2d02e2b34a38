from __future__ import annotations

from benchmarks.suite.compose import (
    AreaOutcome,
    compose,
    fmt_number,
    kept_areas,
    summary_table,
)
from tests.benchmarks.samples import gateway_doc


def _page(*outcomes: AreaOutcome) -> str:
    return compose(outcomes, generated="2026-11-29T14:00:00Z", command="suite")


def test_a_met_target_and_a_missed_one_are_rendered_as_such() -> None:
    page = _page(AreaOutcome("gateway", doc=gateway_doc(rps=1500.0)))
    row = next(line for line in page.splitlines() if "req/s at saturation" in line)
    assert row.endswith("| met |")
    assert "1,500 req/s" in row and "LiteLLM proxy (1 worker): 60 req/s" in row and "25x" in row
    assert "Missed targets: 0." in page

    page = _page(AreaOutcome("gateway", doc=gateway_doc(rps=900.0)))
    row = next(line for line in page.splitlines() if "req/s at saturation" in line)
    assert row.endswith("| **MISSED** |")
    assert "15x" in row
    assert "Missed targets: 1." in page


def test_a_figure_without_a_target_has_no_verdict() -> None:
    table = summary_table([AreaOutcome("gateway", doc=gateway_doc())])
    row = next(line for line in table.splitlines() if "added p50" in line)
    assert row == "| gateway | added p50 latency at c1 | 1.1 ms | - | - | - | - |"


def test_a_failed_area_is_reported_in_the_table_and_its_section() -> None:
    page = _page(
        AreaOutcome("gateway", doc=gateway_doc()),
        AreaOutcome("drift", error="exited 1: ImportError | boom"),
    )
    assert (
        "| drift | **FAILED** | exited 1: ImportError \\| boom | - | - | - | **MISSED** |" in page
    )
    assert "## drift: FAILED\n\nexited 1: ImportError | boom" in page
    assert "Failed areas: drift." in page
    assert "## gateway: Gateway throughput" in page


def test_each_section_names_its_command_machine_date_and_plots() -> None:
    doc = gateway_doc()
    page = _page(AreaOutcome("gateway", doc=doc))
    assert "- Command: `.venv/bin/python -m benchmarks.gateway.run`" in page
    assert f"- Date: {doc['date']}" in page
    assert f"{doc['machine']['cores']} cores, {doc['machine']['cpu']}" in page
    # RESULTS.md sits in benchmarks/: links are relative to it
    assert "![gateway/latency_vs_load.png](gateway/latency_vs_load.png)" in page
    # the area's own headings sit below its section heading
    assert "\n##### Throughput\n" in page
    assert "not results" not in page


def test_a_quick_document_is_flagged() -> None:
    page = _page(AreaOutcome("gateway", doc=gateway_doc(quick=True)))
    assert "**Quick (smoke) run: these numbers are not results.**" in page


def test_numbers_are_readable() -> None:
    assert fmt_number(1500.0) == "1,500"
    assert fmt_number(356.94) == "357"
    assert fmt_number(14.54) == "14.5"
    assert fmt_number(0.403) == "0.403"
    assert fmt_number(None) == "-"


def test_a_kept_area_keeps_its_rows_and_section_verbatim() -> None:
    old = _page(
        AreaOutcome("gateway", doc=gateway_doc(rps=900.0)),
        AreaOutcome("drift", doc=gateway_doc(rps=1500.0) | {"area": "drift"}),
    )
    kept = kept_areas(old, ["gateway", "serving"])
    assert list(kept) == ["gateway"]  # serving is not on that page
    assert kept["gateway"].missed == 1 and not kept["gateway"].failed
    new = _page(kept["gateway"], AreaOutcome("drift", doc=gateway_doc(rps=3000.0)))
    gateway_part = [line for line in old.splitlines() if line.startswith("| gateway |")]
    assert gateway_part == [line for line in new.splitlines() if line.startswith("| gateway |")]
    assert kept["gateway"].section in new and "3,000 req/s" in new
    assert "Missed targets: 1." in new
    failed = kept_areas(_page(AreaOutcome("gateway", error="exited 1")), ["gateway"])
    assert failed["gateway"].failed and "Failed areas: gateway." in _page(failed["gateway"])
