"""Render the Helm chart in-process with helm-python-sdk (Helm's own library, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sre.sre_helpers import CHART, INSTALL_HINT

KUBE_VERSION = "1.31.0"
NAMESPACE = "ml"
RELEASE = "dg"
PRODUCTION_VALUES = CHART / "values-gpu-production.yaml"


def _helm() -> Any:
    try:
        import helm_python
    except ImportError:
        pytest.fail(f"helm-python-sdk is not installed: {INSTALL_HINT}", pytrace=False)
    return helm_python


def load_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def lint(values: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _helm().lint(
        CHART, values, strict=True, namespace=NAMESPACE, kube_version=KUBE_VERSION
    )
    return result


def render(values: dict[str, Any]) -> str:
    """What ``helm template`` renders; raises the SDK's error on schema or YAML errors."""
    helm = _helm()
    release = helm.Config(storage_driver="memory", namespace=NAMESPACE).install(
        CHART, RELEASE, values, dry_run="client", namespace=NAMESPACE
    )
    manifest: str = release["manifest"]
    return manifest


def manifests(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(values)) if d]


def find(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(hits) == 1, f"{kind} *{name_suffix}: {len(hits)} found"
    return hits[0]
