"""The vLLM the engine areas (serving, swap) measure against: a running one the suite
passes with ``--engine-url``, or one they start themselves."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from driftgate.core.credentials import bearer_headers
from driftgate.engine import EngineProcess
from driftgate.settings import EngineSettings


def add_engine_flag(ap: argparse.ArgumentParser) -> None:
    """``--engine-url``: the suite's quick run shares one vLLM between the engine areas."""
    ap.add_argument("--engine-url", help="use this running vLLM instead of starting one")


def engine_settings() -> EngineSettings:
    """A vLLM on a free port, serving up to four LoRAs in a batch (eight kept loaded)."""
    # tests.live pulls in pytest: import it only when an engine is really started
    from tests.live import free_port

    return EngineSettings(port=free_port(), max_loras=4, max_cpu_loras=8)


def engine_headers() -> dict[str, str]:
    """What a direct client of the engine sends: ``DRIFTGATE_ENGINE_API_KEY``, which a
    started engine runs with and a given one must (empty: an engine without a key)."""
    return bearer_headers(EngineSettings().engine_api_key)


@contextmanager
def engine_url(given: str | None, log_dir: Path) -> Iterator[str]:
    """The base URL of ``given`` (left running), else of a vLLM started for the block."""
    if given:
        yield given.rstrip("/")
        return
    with EngineProcess(engine_settings(), log_path=log_dir / "engine.log") as engine:
        yield engine.base_url
