from __future__ import annotations

import copy

from benchmarks.suite.contract import check_document, figure
from tests.benchmarks.samples import gateway_doc


def test_a_document_built_with_the_helpers_has_the_contract_shape() -> None:
    doc = gateway_doc()
    assert check_document(doc, area="gateway", quick=False) == []
    assert doc["machine"]["cores"] >= 1
    assert doc["date"].endswith("Z")


def test_the_ratio_is_ours_over_the_reference() -> None:
    assert figure("x", 1500.0, "req/s", reference_value=60.0)["ratio"] == 25.0
    assert figure("x", 1500.0, "req/s")["ratio"] is None


def test_missing_fields_are_each_named() -> None:
    doc = gateway_doc()
    del doc["figures"], doc["command"]
    errors = check_document(doc)
    assert "figures is missing" in errors
    assert "command is missing" in errors


def test_wrong_area_or_mode_is_reported() -> None:
    errors = check_document(gateway_doc(quick=True), area="drift", quick=False)
    assert "area is 'gateway', expected 'drift'" in errors
    assert "quick is True, expected False" in errors


def test_a_figure_with_a_target_must_say_whether_it_was_met() -> None:
    doc = gateway_doc()
    doc["figures"][0]["met"] = None
    assert check_document(doc) == ["figures[0] has a target but met is null"]


def test_a_figure_without_a_value_needs_a_note() -> None:
    doc = gateway_doc()
    doc["figures"][1]["value"] = None
    assert check_document(doc) == ["figures[1].value is null without a note"]
    doc["figures"][1]["note"] = "not run: no time left"
    assert check_document(doc) == []


def test_wrong_types_are_caught() -> None:
    doc = gateway_doc()
    broken = copy.deepcopy(doc)
    broken["figures"][0]["value"] = True  # a bool is not a measurement
    broken["figures"][0]["met"] = "yes"
    broken["quick"] = "no"
    del broken["figures"][1]["note"]
    errors = check_document(broken)
    assert "figures[0].value is not a number" in errors
    assert "figures[0].met has the wrong type" in errors
    assert "quick has the wrong type" in errors
    assert "figures[1].note is missing (null where it does not apply)" in errors


def test_empty_figures_and_bad_dates_are_rejected() -> None:
    doc = gateway_doc()
    doc["figures"] = []
    doc["date"] = "yesterday"
    assert set(check_document(doc)) == {"figures is empty", "date is not an ISO 8601 time"}
    assert check_document([1, 2]) == ["the document is not a JSON object"]
