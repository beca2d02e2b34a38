"""Helpers shared by the SRE tests: where things are, and tools that must be installed.


A missing tool fails the test with the command that installs it; nothing is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
ALERTS = GRAFANA / "alerts"
DASHBOARDS = GRAFANA / "dashboards"
CHART = REPO / "deploy" / "helm" / "driftgate"
SCHEMA_CHECK = GRAFANA / ".schema-check"
INSTALL_HINT = "run scripts/sre_tools.sh"


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def require_node_package(package: str) -> Path:
    path = SCHEMA_CHECK / "node_modules" / package
    if not path.exists():
        pytest.fail(
            f"npm package {package} is missing under {SCHEMA_CHECK}: {INSTALL_HINT}", pytrace=False
        )
    return path


def run_script(script: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one of grafana/*.py with this interpreter."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
