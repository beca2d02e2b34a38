"""The command-line plumbing every area's ``run.py`` shares (``benchmarks.suite.cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.suite.cli import (
    ROOT,
    AreaRun,
    area_parser,
    recorded_path,
    result_path,
    shown_path,
)
from benchmarks.suite.contract import check_document, figure


def test_the_parser_takes_the_flags_the_suite_passes() -> None:
    ap = area_parser("doc")
    ap.add_argument("--events", type=int)
    args = ap.parse_args(["--json", "/tmp/x.json", "--quick", "--events", "3"])
    assert (args.quick, args.json, args.events) == (True, Path("/tmp/x.json"), 3)
    defaults = ap.parse_args([])
    assert (defaults.quick, defaults.json) == (False, None)


def test_the_recorded_document_is_in_the_areas_folder() -> None:
    assert recorded_path("swap") == ROOT / "benchmarks" / "swap" / "results.json"


def test_json_wins_then_a_quick_run_gets_a_fresh_temp_file_then_the_recorded_one() -> None:
    given = Path("out.json")
    assert result_path("drift", given, quick=True) == given
    assert result_path("serving", None, quick=False) == recorded_path("serving")
    quick = [result_path(area, None, quick=True) for area in ("serving", "serving", "gateway")]
    assert len(set(quick)) == 3  # every smoke run its own file
    assert all(p.parent.is_dir() and not p.exists() for p in quick)
    assert all(p != recorded_path("serving") and p.name == "results.json" for p in quick)


def test_paths_inside_the_repository_are_shown_relative(tmp_path: Path) -> None:
    assert shown_path(ROOT / "benchmarks" / "x.png") == "benchmarks/x.png"
    assert shown_path(tmp_path / "x.png") == str(tmp_path / "x.png")


def test_a_run_records_its_command_and_load_then_writes_a_contract_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["run.py", "--quick", "--json", str(tmp_path / "r.json")])
    args = area_parser(None).parse_args(None)
    run = AreaRun.start("serving", args, None)
    assert run.out == tmp_path / "r.json"
    assert run.command == (
        f".venv/bin/python -m benchmarks.serving.run --quick --json {tmp_path / 'r.json'}"
    )
    assert len(run.loadavg_before) == 3
    # a quick run's plot goes beside its document, a full run's beside the recorded one
    assert run.plot_path("p.png") == tmp_path.resolve() / "p.png"
    full = AreaRun.start("serving", area_parser(None).parse_args([]), [])
    assert full.plot_path("p.png") == ROOT / "benchmarks" / "serving" / "p.png"

    doc = run.write(
        title="t",
        figures=[figure("x", 1.0, "s")],
        details_md="d",
        plots=["p.png"],
        extra={"rows": [1]},
    )
    assert json.loads(run.out.read_text()) == doc
    assert check_document(doc, area="serving", quick=True) == []
    assert doc["rows"] == [1]
    assert doc["command"] == run.command
