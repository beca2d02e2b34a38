"""The settings base: facts several deployables read, each one environment variable.

Each shared fact is defined once, in a small class here, with no service prefix; a
deployable's settings class derives from the ones it reads and adds its own fields under
its own prefix (``DRIFTGATE_GATEWAY_``, ``DRIFTGATE_DRIFT_``, ``DRIFTGATE_ROLLOUT_``,
``DRIFTGATE_RETRAIN_``). So the stack and the Helm chart set each fact once, and
:func:`env_names` lists exactly what a deployable reads. ``DRIFTGATE_HOME`` is read by
:func:`driftgate.core.paths.home` (every default path derives from it).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftgate.core import paths

HOME_ENV = "DRIFTGATE_HOME"
STATE_URL_ENV = "DRIFTGATE_STATE_URL"
ADMIN_KEY_ENV = "DRIFTGATE_ADMIN_KEY"
GATEWAY_URL_ENV = "DRIFTGATE_GATEWAY_URL"
DRIFT_URL_ENV = "DRIFTGATE_DRIFT_URL"
INGEST_KEY_ENV = "DRIFTGATE_INGEST_KEY"
ENGINE_API_KEY_ENV = "DRIFTGATE_ENGINE_API_KEY"
ADAPTER_ROOTS_ENV = "DRIFTGATE_ADAPTER_ROOTS"

_SHARED = SettingsConfigDict(extra="ignore", populate_by_name=True)


class StateUrlSetting(BaseSettings):
    model_config = _SHARED

    #: The shared state database (SQLAlchemy URL; SQLite under the home by default).
    state_url: str = Field(default_factory=paths.default_state_url, validation_alias=STATE_URL_ENV)


class AdminKeySetting(BaseSettings):
    model_config = _SHARED

    #: The admin key: the gateway's ``/admin`` API and the rollout API's writes check it,
    #: and the rollout controller presents it to the gateway. Unset: admin APIs answer 401.
    admin_key: SecretStr | None = Field(default=None, validation_alias=ADMIN_KEY_ENV)


class GatewayUrlSetting(BaseSettings):
    model_config = _SHARED

    #: The gateway's base URL (any replica), for the rollout controller.
    gateway_url: str | None = Field(default=None, validation_alias=GATEWAY_URL_ENV)


class DriftUrlSetting(BaseSettings):
    model_config = _SHARED

    #: The drift service's base URL; the gateway sends its events and feedback there.
    drift_url: str | None = Field(default=None, validation_alias=DRIFT_URL_ENV)


class IngestKeySetting(BaseSettings):
    model_config = _SHARED

    #: The service credential of the loop's input: the drift service accepts request events
    #: and feedback only with it, and the gateway presents it. Unset on the drift service:
    #: its write routes answer 401 (nobody can feed the loop).
    ingest_key: SecretStr | None = Field(default=None, validation_alias=INGEST_KEY_ENV)


class EngineApiKeySetting(BaseSettings):
    model_config = _SHARED

    #: vLLM's API key (``VLLM_API_KEY``): the engine launcher starts vLLM with it, and the
    #: gateway and the retrain gate present it. Without it whoever reaches vLLM can generate
    #: and load LoRA adapters under any name. Unset: vLLM runs open (a trusted network only).
    engine_api_key: SecretStr | None = Field(default=None, validation_alias=ENGINE_API_KEY_ENV)


class AdapterRootsSetting(BaseSettings):
    model_config = _SHARED

    #: Directories an adapter path given over an API (gateway admin, rollout start) must
    #: lie in once symlinks and ``..`` are resolved (JSON list). Default: the registry
    #: under ``DRIFTGATE_HOME``, where the retrain job writes its versions.
    adapter_roots: list[Path] = Field(
        default_factory=lambda: [paths.registry_dir()], validation_alias=ADAPTER_ROOTS_ENV
    )


def env_names(settings: type[BaseSettings]) -> dict[str, str]:
    """Every environment variable ``settings`` reads -> the field it sets.

    >>> sorted(env_names(StateUrlSetting))
    ['DRIFTGATE_STATE_URL']
    """
    prefix = str(settings.model_config.get("env_prefix") or "")
    names = {}
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names[(alias if isinstance(alias, str) else prefix + name).upper()] = name
    return names
