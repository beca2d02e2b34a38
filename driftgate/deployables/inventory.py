"""Every environment variable each deployable reads, from its settings classes.

python -m driftgate.deployables.inventory > docs/SETTINGS.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from types import MappingProxyType

from pydantic_settings import BaseSettings

from drift.settings import DriftSettings
from driftgate.core.settings import HOME_ENV, env_names
from gateway.settings import GatewaySettings
from retrain.settings import RetrainSettings
from rollout.settings import RolloutSettings

#: The settings classes each deployable reads from its environment.
SETTINGS: Mapping[str, tuple[type[BaseSettings], ...]] = MappingProxyType(
    {
        "gateway": (GatewaySettings,),
        "drift_service": (DriftSettings, RolloutSettings),
        "retrain_job": (RetrainSettings,),
    }
)


def variables(deployable: str) -> dict[str, str]:
    """Every environment variable ``deployable`` reads -> the setting it sets.

    >>> variables("retrain_job")["DRIFTGATE_STATE_URL"]
    'RetrainSettings.state_url'
    """
    found = {HOME_ENV: "driftgate.core.paths.home"}
    for cls in SETTINGS[deployable]:
        found |= {env: f"{cls.__name__}.{name}" for env, name in env_names(cls).items()}
    return found


def settings_table() -> str:
    """The Markdown table of docs/SETTINGS.md: every variable, who reads it, its default."""
    readers: dict[str, list[str]] = {}
    defaults: dict[str, str] = {}
    for deployable, classes in SETTINGS.items():
        for env in variables(deployable):
            readers.setdefault(env, []).append(deployable)
        for cls in classes:
            for env, name in env_names(cls).items():
                field = cls.model_fields[name]
                default = field.get_default(call_default_factory=False)
                shown = "(derived)" if field.default_factory else json.dumps(default, default=str)
                defaults[env] = shown
    defaults[HOME_ENV] = '"~/.cache/driftgate"'
    shared = {env for env, who in readers.items() if len(who) > 1}
    rows = [
        f"| `{env}` | {', '.join(readers[env])} | `{defaults[env]}` |"
        for env in sorted(readers, key=lambda e: (e not in shared, e))
    ]
    return "\n".join(["| variable | read by | default |", "|---|---|---|", *rows]) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_table())
