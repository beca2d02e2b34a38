"""The layer contract covers every module: a new app module cannot slip past it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_app_module_is_in_the_app_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    app_layer = {name.strip() for name in layers[0].split(":")}
    assert layers[-1] == "driftgate.core"
    on_disk = {
        f"driftgate.{p.stem if p.is_file() else p.name}"
        for p in (ROOT / "driftgate").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    } - {"driftgate.core"}
    assert app_layer == on_disk
    services = {
        name.strip() for layer in layers[1:-1] for name in layer.replace("|", ":").split(":")
    }
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert services == packages - {"driftgate", "tests", "benchmarks", "grafana"}
