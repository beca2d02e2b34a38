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


def render_release(overrides: dict[str, Any] | None = None) -> Rendered:
    """``helm template`` of the chart with its defaults and ``overrides``, indexed."""
    return Rendered.from_manifests(manifests(overrides or {}), NAMESPACE)


def local_images(model_dir: Path | None = None) -> list[LocalImage]:
    """The chart's two images, as the project's install provides them here."""
    defaults = chart_defaults()
    models = {defaults["engine"]["model"]: model_dir or paths.default_model_dir()}
    return default_images(
        defaults["image"]["repository"], defaults["engine"]["image"]["repository"], models
    )
