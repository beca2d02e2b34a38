from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from benchmarks.suite.__main__ import read_document, run_area
from tests.benchmarks.samples import gateway_doc


def _area(root: Path, body: str) -> None:
    """A stand-in ``benchmarks/fake/run.py`` under ``root``."""
    folder = root / "benchmarks" / "fake"
    folder.mkdir(parents=True)
    (folder / "run.py").write_text(textwrap.dedent(body))


def _fake_doc(quick: bool) -> str:
    doc = gateway_doc(quick=quick) | {"area": "fake"}
    return json.dumps(json.dumps(doc))  # a Python string literal holding the JSON


def test_an_area_that_writes_a_good_document_is_ok(tmp_path: Path) -> None:
    _area(
        tmp_path,
        f"""
        import argparse, pathlib
        ap = argparse.ArgumentParser()
        ap.add_argument("--json", type=pathlib.Path)
        ap.add_argument("--quick", action="store_true")
        args = ap.parse_args()
        print("measuring")
        args.json.write_text({_fake_doc(quick=True)})
        """,
    )
    out = tmp_path / "fake.json"
    o = run_area("fake", out, quick=True, timeout_s=60, root=tmp_path)
    assert o.ok, o.error
    assert o.doc is not None and o.doc["area"] == "fake"


def test_an_area_that_exits_non_zero_fails_with_its_last_words(tmp_path: Path) -> None:
    _area(tmp_path, "print('engine did not start'); raise SystemExit(3)\n")
    o = run_area("fake", tmp_path / "fake.json", quick=True, timeout_s=60, root=tmp_path)
    assert not o.ok
    assert o.error == "exited 3: engine did not start"


def test_a_full_document_where_a_quick_one_was_asked_fails(tmp_path: Path) -> None:
    _area(
        tmp_path,
        f"""
        import sys, pathlib
        pathlib.Path(sys.argv[sys.argv.index("--json") + 1]).write_text({_fake_doc(quick=False)})
        """,
    )
    o = run_area("fake", tmp_path / "fake.json", quick=True, timeout_s=60, root=tmp_path)
    assert o.error is not None and "quick is False, expected True" in o.error


def test_a_missing_script_fails_without_running_anything(tmp_path: Path) -> None:
    o = run_area("fake", tmp_path / "fake.json", quick=True, timeout_s=60, root=tmp_path)
    assert o.error == "benchmarks/fake/run.py is missing"


def test_an_area_past_its_time_is_stopped(tmp_path: Path) -> None:
    _area(tmp_path, "import time\nprint('working', flush=True)\ntime.sleep(60)\n")
    o = run_area("fake", tmp_path / "fake.json", quick=True, timeout_s=1, root=tmp_path)
    assert o.error == "timed out after 1 s"


def test_recorded_documents_are_checked(tmp_path: Path) -> None:
    missing = read_document("gateway", tmp_path / "results.json", quick=False)
    assert missing.error is not None and "no result document" in missing.error
    (tmp_path / "results.json").write_text("{not json")
    assert "is not JSON" in str(
        read_document("gateway", tmp_path / "results.json", quick=False).error
    )
    (tmp_path / "results.json").write_text(json.dumps({"area": "gateway"}))
    broken = read_document("gateway", tmp_path / "results.json", quick=False)
    assert broken.error is not None and "breaks the contract: title is missing" in broken.error
    (tmp_path / "results.json").write_text(json.dumps(gateway_doc()))
    assert read_document("gateway", tmp_path / "results.json", quick=False).ok


def test_a_full_run_of_some_areas_keeps_the_others_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.suite.__main__ as suite
    from benchmarks.suite.compose import AreaOutcome

    recorded = {"gateway": tmp_path / "gateway.json"}
    recorded["gateway"].write_text(json.dumps(gateway_doc(rps=2222.0)))
    monkeypatch.setattr(suite, "BENCH", tmp_path)
    monkeypatch.setattr(suite, "ROOT", tmp_path)
    monkeypatch.setattr(suite, "recorded_path", lambda a: recorded.get(a, tmp_path / "none"))
    fresh = gateway_doc(rps=3333.0) | {"area": "drift"}
    monkeypatch.setattr(suite, "run_suite", lambda areas, **_: [AreaOutcome("drift", doc=fresh)])
    assert suite.main(["--areas", "drift"]) == 0  # the run itself succeeded
    page = (tmp_path / "RESULTS.md").read_text()
    assert "2,222" in page and "3,333" in page  # the recorded gateway and the new drift run
    assert "no result document" in page  # e.g. serving, never recorded here


def test_composing_one_area_leaves_the_others_as_the_page_shows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.suite.__main__ as suite

    recorded = {a: tmp_path / f"{a}.json" for a in ("gateway", "drift")}
    recorded["gateway"].write_text(json.dumps(gateway_doc(rps=2222.0)))
    recorded["drift"].write_text(json.dumps(gateway_doc(rps=3333.0) | {"area": "drift"}))
    monkeypatch.setattr(suite, "BENCH", tmp_path)
    monkeypatch.setattr(suite, "ROOT", tmp_path)
    monkeypatch.setattr(suite, "recorded_path", lambda a: recorded.get(a, tmp_path / "none"))
    suite.main(["--compose-only"])
    # newer documents: only drift's may reach the page
    recorded["gateway"].write_text(json.dumps(gateway_doc(rps=4444.0)))
    recorded["drift"].write_text(json.dumps(gateway_doc(rps=5555.0) | {"area": "drift"}))
    suite.main(["--compose-only", "--areas", "drift"])
    page = (tmp_path / "RESULTS.md").read_text()
    assert "2,222" in page and "4,444" not in page
    assert "5,555" in page and "3,333" not in page
    assert "no result document" in page  # serving, never recorded here
