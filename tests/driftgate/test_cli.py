"""The ``driftgate`` command: parsing, one-line errors and exit codes (real subprocesses)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import pytest

from driftgate import cli


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DRIFTGATE_HOME": str(home), "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "driftgate", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_no_command_is_a_usage_error(tmp_path):
    proc = _run(home=tmp_path)
    assert proc.returncode == 2
    assert "usage: driftgate" in proc.stderr


def test_help_lists_the_commands(tmp_path):
    out = _run("--help", home=tmp_path).stdout
    for name in ("model", "engine", "up", "demo"):
        assert name in out


def test_prepare_with_invalid_source_is_one_line(tmp_path):
    proc = _run("model", "prepare", "--source", str(tmp_path / "nope"), home=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"driftgate: error: model source {tmp_path / 'nope'} is not a directory"
    ]


def test_engine_without_a_model_says_what_to_do(tmp_path):
    proc = _run("engine", "--port", "1", home=tmp_path)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("driftgate: error: model source ")
    assert line.endswith("run `driftgate model prepare` first")


def test_up_without_a_model_says_what_to_do(tmp_path):
    proc = _run("up", "--gateway-port", "1", home=tmp_path)
    assert proc.returncode == 1
    assert "run `driftgate model prepare` first" in proc.stderr


def test_bad_port_is_a_clear_error(tmp_path):
    proc = _run("engine", "--port", "99999", home=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("driftgate: error: ")
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "driftgate: error: invalid EngineSettings setting: port: Input should be less than or "
        "equal to 65535 (got 99999)"
    ]


def test_demo_without_a_model_says_run_make_setup(tmp_path):
    proc = _run("demo", "--quick", home=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("driftgate: error: model source ")
    assert lines[0].endswith("run `make setup` first")


def test_demo_calls_run_demo(monkeypatch):
    monkeypatch.setattr(cli, "_require_model", lambda *args, **kwargs: None)
    seen: list[argparse.Namespace] = []
    fake = types.ModuleType("driftgate.demo")
    fake.run_demo = lambda args: seen.append(args) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "driftgate.demo", fake)
    assert cli.main(["demo", "--quick"]) == 7
    assert seen[0].quick is True


@pytest.mark.parametrize(
    ("argv", "attrs"),
    [
        (["model", "prepare", "--force"], {"force": True, "source": None}),
        (["engine", "--port", "9001", "--max-loras", "2"], {"port": 9001, "max_loras": 2}),
        (["up", "--upstream", "http://a:1", "--upstream", "http://b:2"],
         {"upstream": ["http://a:1", "http://b:2"], "tenant": "demo"}),
    ],
)  # fmt: skip
def test_parser(argv, attrs):
    args = cli.build_parser().parse_args(argv)
    for key, value in attrs.items():
        assert getattr(args, key) == value
