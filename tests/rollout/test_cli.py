"""``driftgate rollout ...`` against a real drift service (in-process uvicorn), plus submit."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr

from drift.app import create_app as create_drift_app
from drift.settings import DriftSettings
from driftgate.core.errors import CliError
from rollout.cli import register
from rollout.mount import with_rollouts
from rollout.settings import RolloutSettings
from rollout.store import RolloutStore
from rollout.submit import submit_candidate
from tests.rollout.test_controller import bound, serve

KEY = "cli-admin-key"


@pytest_asyncio.fixture(loop_scope="function")
async def drift(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    app = with_rollouts(
        create_drift_app(DriftSettings(state_url=state_url, trigger_mode="off")),
        RolloutSettings(
            state_url=state_url,
            admin_key=SecretStr(KEY),
            gateway_url=None,
            adapter_roots=[tmp_path.parent],  # the tests start rollouts of tmp_path
        ),
    )
    sock, url = bound()
    server, task = await serve(app, sock)
    yield url, state_url
    server.should_exit = True
    await task


async def cli(url: str, *argv: str, key: str = KEY) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rollout", *argv, "--drift-url", url, "--admin-key", key])
    out: list[str] = []

    def run() -> int:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = int(args.func(args))
        out.append(buf.getvalue())
        return code

    code = await asyncio.to_thread(run)
    return code, out[0]


async def test_start_status_and_overrides(drift: tuple[str, str], tmp_path: Path) -> None:
    url, _ = drift
    code, text = await cli(url, "start", "--adapter", "support", "--path", str(tmp_path), "--json")
    created = json.loads(text)
    assert code == 0 and created["state"] == "candidate" and created["approved"] is True
    assert created["path"] == await asyncio.to_thread(os.path.realpath, tmp_path)
    code, text = await cli(url, "status", "--adapter", "support")
    assert code == 0 and f"#{created['id']} support: candidate" in text
    code, text = await cli(url, "status", "--id", str(created["id"]))
    assert "-> candidate" in text
    with pytest.raises(CliError, match=r"HTTP 409.*needs canary"):
        await cli(url, "promote", str(created["id"]))
    with pytest.raises(CliError, match=r"HTTP 409.*active rollout"):
        await cli(url, "start", "--adapter", "support", "--path", str(tmp_path))
    with pytest.raises(CliError, match="HTTP 401"):
        await cli(url, "rollback", str(created["id"]), key="wrong")
    with pytest.raises(CliError, match="--adapter and --path"):
        await cli(url, "start", "--adapter", "support")
    with pytest.raises(CliError, match="cannot reach"):
        await cli("http://127.0.0.1:9", "status")


async def test_manual_approval_of_a_submitted_candidate(
    drift: tuple[str, str], tmp_path: Path
) -> None:
    url, state_url = drift
    r = submit_candidate(state_url, "support", str(tmp_path), approval="manual", meta={"run": 7})
    assert (r.state.value, r.approved, dict(r.meta)) == ("candidate", False, {"run": 7})
    code, text = await cli(url, "start", "--id", str(r.id), "--json")
    assert code == 0 and json.loads(text)["approved"] is True
    store = RolloutStore(state_url)
    try:
        assert store.get(r.id).approved
        assert [t["to"] for t in store.transitions(r.id)] == ["candidate"]
    finally:
        store.dispose()


def test_submit_refuses_bad_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    from driftgate.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        submit_candidate(url, "Bad Name", "/x")
    with pytest.raises(InvalidRequest):
        submit_candidate(url, "support", "/x", canary_weight=1.0)
    r: Any = submit_candidate(url, "support", "/x")
    assert r.approved and r.state.value == "candidate"
