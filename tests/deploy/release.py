"""The chart rendered for the harness: values, the local images, the outside services.

The harness renders the chart's default values; a test swaps values in (replicas, a
state URL) through ``overrides``. The default ``state.url`` names a PostgreSQL Service
the chart does not run (``postgresql:5432``): the test points that name at a real local
PostgreSQL (:class:`~tests.deploy.cluster.External`) and only swaps the credentials and
database name in the URL for the test server's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from driftgate.core import paths
from tests.deploy.images import LocalImage, default_images
from tests.deploy.rendered import Rendered
from tests.sre.chart_render import NAMESPACE, manifests
from tests.sre.sre_helpers import CHART


def chart_defaults() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return data


def render_release(
    overrides: dict[str, Any] | None = None,
    existing_secrets: dict[str, dict[str, str]] | None = None,
) -> Rendered:
    """``helm template`` of the chart with its defaults and ``overrides``, indexed."""
    return Rendered.from_manifests(manifests(overrides or {}), NAMESPACE, existing_secrets)


def _value(values: dict[str, Any], defaults: dict[str, Any], *keys: str) -> Any:
    for source in (values, defaults):
        node: Any = source
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node
    raise KeyError(".".join(keys))


def local_images(
    model_dir: Path | None = None, values: dict[str, Any] | None = None
) -> list[LocalImage]:
    """The chart's images (as ``values`` name them), as the project's install provides
    them here. Whatever model the values name, the project's small model stands in."""
    defaults, values = chart_defaults(), values or {}
    models = {_value(values, defaults, "engine", "model"): model_dir or paths.default_model_dir()}
    images = default_images(
        _value(values, defaults, "image", "repository"),
        _value(values, defaults, "engine", "image", "repository"),
        models,
    )
    # Debian's redis-server, the chart's command unchanged.
    return [*images, LocalImage(_value(values, defaults, "limits", "redis", "image", "repository"))]
