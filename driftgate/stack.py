"""The embedded stack: vLLM engine, drift service and gateway as supervised processes.

:func:`stack_services` (pure) turns settings into :class:`ServiceSpec` s: the
command, the environment and the readiness probe of each process, in start
order. :class:`Stack` starts them one after another, waits until each is
ready, and stops every process it started (whole process groups, reverse
order) on exit, on an error, on Ctrl-C and, with :func:`exit_on_signals`, on
SIGTERM. Tests hand :class:`Stack` their own specs.

Every environment variable passed to the gateway and the drift service is set
in :func:`service_env`: align names with their settings classes there.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from urllib.parse import urlsplit

from pydantic import SecretStr

from driftgate.core import admin_api
from driftgate.core.client import Client, ServiceError, ServiceRefused
from driftgate.core.settings import (
    ADMIN_KEY_ENV,
    DRIFT_URL_ENV,
    ENGINE_API_KEY_ENV,
    GATEWAY_URL_ENV,
    HOME_ENV,
    INGEST_KEY_ENV,
    STATE_URL_ENV,
)
from driftgate.engine import engine_command, engine_env, engine_probe
from driftgate.process import ManagedProcess, Probe, http_probe
from driftgate.settings import REQUEST_ID_SECRET_ENV, EngineSettings, StackSettings, url_for

GATEWAY_APP = "driftgate.deployables.gateway:app"
DRIFT_APP = "driftgate.deployables.drift_service:app"


class StackError(RuntimeError):
    """The stack could not be started or configured (message is one clear line)."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one process of the stack and how to tell it is ready."""

    name: str
    argv: list[str]
    url: str
    probe: Probe
    env: dict[str, str] | None = None
    ready_timeout_s: float = 60.0
    stop_grace_s: float = 10.0


@dataclass(frozen=True)
class StackUrls:
    engine: list[str]
    drift: str
    gateway: str


@dataclass(frozen=True)
class StackKeys:
    """The stack's credentials (each generated per run unless configured)."""

    #: Operators and the rollout controller -> the gateway's ``/admin``, drift reads.
    admin: str
    #: The gateway -> the drift service's request events and feedback.
    ingest: str
    #: The gateway and the retrain gate -> vLLM; empty: the engines run without one.
    engine: str
    #: Signs the gateway's request ids to their tenant (feedback ownership).
    request_id: str = ""


@dataclass
class StackConfig:
    """Everything :func:`stack_services` derived: specs, URLs and the credentials."""

    services: list[ServiceSpec]
    urls: StackUrls
    admin_key: str
    keys: StackKeys
    log_dir: Path
    state_url: str
    extra: dict[str, str] = field(default_factory=dict)


def stack_urls(settings: StackSettings, engine: EngineSettings) -> StackUrls:
    if settings.start_engine:
        upstreams = [url_for(settings.host, settings.engine_port)]
    else:
        if not settings.upstreams:
            raise StackError("start_engine is off but no upstreams are given")
        upstreams = [u.rstrip("/") for u in settings.upstreams]
    return StackUrls(
        engine=upstreams,
        drift=url_for(settings.host, settings.drift_port),
        gateway=url_for(settings.host, settings.gateway_port),
    )


def stack_keys(settings: StackSettings) -> StackKeys:
    """The configured keys; a missing one is generated (the engine's only when it is ours)."""
    return StackKeys(
        admin=settings.admin_key or secrets.token_urlsafe(24),
        ingest=settings.ingest_key or secrets.token_urlsafe(24),
        engine=settings.engine_api_key
        or (secrets.token_urlsafe(24) if settings.start_engine else ""),
        request_id=settings.request_id_secret or secrets.token_urlsafe(32),
    )


def service_env(
    settings: StackSettings,
    engine: EngineSettings,
    urls: StackUrls,
    keys: StackKeys,
) -> dict[str, dict[str, str]]:
    """Environment variables per service (added to the inherited environment).

    The one place that maps stack settings to the deployables' settings names; each fact
    is one variable (the shared ones from :mod:`driftgate.core.settings`). Secrets travel
    in the environment, never on a command line (``ps`` shows those to every user).
    """
    common = {
        HOME_ENV: str(settings.home),
        STATE_URL_ENV: settings.resolved_state_url(),
        ADMIN_KEY_ENV: keys.admin,
        INGEST_KEY_ENV: keys.ingest,
        # the drift service passes it on to the retrain job it starts (the gate's engine)
        ENGINE_API_KEY_ENV: keys.engine,
        "PYTHONUNBUFFERED": "1",
    }
    # The retrain job is started by the drift service's trigger and inherits its env.
    retrain = {
        "DRIFTGATE_RETRAIN_ENGINE_URL": urls.engine[0],
        "DRIFTGATE_RETRAIN_SERVED_MODEL_NAME": engine.served_model_name,
        "DRIFTGATE_RETRAIN_BASE_MODEL_DIR": str(engine.model_dir),
    }
    return {
        "drift": {
            **common,
            **retrain,
            # The rollout controller (in the drift service) drives the gateway's admin API.
            GATEWAY_URL_ENV: urls.gateway,
        },
        "gateway": {
            **common,
            DRIFT_URL_ENV: urls.drift,
            REQUEST_ID_SECRET_ENV: keys.request_id,
            "DRIFTGATE_GATEWAY_UPSTREAMS": json.dumps(urls.engine),
            "DRIFTGATE_GATEWAY_BASE_MODEL": engine.served_model_name,
        },
    }


#: Idle keep-alive connections stay open this long (uvicorn's default is 5 s). Clients
#: (httpx, aiohttp) expire idle connections after 5-15 s: the server must outlast them, or a
#: request sent on a connection the server is closing at that moment fails (seen in the demo).
KEEP_ALIVE_S = 75


def _uvicorn(python: str, app: str, host: str, port: int) -> list[str]:
    return [
        python, "-m", "uvicorn", "--factory", app,
        "--host", host, "--port", str(port), "--no-access-log",
        "--timeout-keep-alive", str(KEEP_ALIVE_S),
    ]  # fmt: skip


def stack_services(
    settings: StackSettings,
    engine: EngineSettings,
    *,
    base_env: Mapping[str, str] | None = None,
) -> StackConfig:
    """The processes of the embedded stack in start order: engine, drift, gateway (pure)."""
    keys = stack_keys(settings)
    urls = stack_urls(settings, engine)
    base = dict(os.environ if base_env is None else base_env)
    envs = service_env(settings, engine, urls, keys)
    services: list[ServiceSpec] = []
    if settings.start_engine:
        eng = engine.model_copy(
            update={
                "host": settings.host,
                "port": settings.engine_port,
                "engine_api_key": SecretStr(keys.engine),
            }
        )
        services.append(
            ServiceSpec(
                name="engine",
                argv=engine_command(eng),
                url=eng.base_url,
                probe=engine_probe(eng.base_url, eng.served_model_name, api_key=eng.engine_api_key),
                env=engine_env(eng, base),
                ready_timeout_s=eng.startup_timeout_s,
                stop_grace_s=eng.stop_grace_s,
            )
        )
    for name, app, port, url in (
        ("drift", DRIFT_APP, settings.drift_port, urls.drift),
        ("gateway", GATEWAY_APP, settings.gateway_port, urls.gateway),
    ):
        services.append(
            ServiceSpec(
                name=name,
                argv=_uvicorn(settings.python, app, settings.host, port),
                url=url,
                probe=http_probe(f"{url}/readyz"),
                env={**base, **envs[name]},
                ready_timeout_s=settings.ready_timeout_s,
                stop_grace_s=settings.stop_grace_s,
            )
        )
    return StackConfig(
        services=services,
        urls=urls,
        admin_key=keys.admin,
        keys=keys,
        log_dir=settings.log_dir,
        state_url=settings.resolved_state_url(),
    )


class Stack:
    """Start services in order, wait for each, stop all of them (reverse order) on exit."""

    def __init__(
        self,
        services: Sequence[ServiceSpec],
        *,
        log_dir: Path,
        progress: bool = False,
    ) -> None:
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise StackError(f"service names must be unique: {names}")
        self.services = list(services)
        self.log_dir = log_dir
        self.progress = progress
        self.processes: dict[str, ManagedProcess] = {}

    def _say(self, msg: str) -> None:
        if self.progress:
            print(msg, file=sys.stderr, flush=True)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self) -> None:
        """Start every service in order; on any failure stop those already started."""
        try:
            for spec in self.services:
                _require_port_free(spec)
                proc = ManagedProcess(
                    spec.name,
                    spec.argv,
                    log_path=self.log_path(spec.name),
                    probe=spec.probe,
                    env=spec.env,
                    ready_timeout_s=spec.ready_timeout_s,
                    stop_grace_s=spec.stop_grace_s,
                )
                self.processes[spec.name] = proc
                self._say(f"starting {spec.name} (log: {proc.log_path})")
                proc.start()
                seconds = proc.wait_ready()
                self._say(f"{spec.name} ready at {spec.url} after {seconds:.1f} s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every started process, last started first. Safe to call twice.

        A Ctrl-C or SIGTERM that arrives while stopping (the first one after
        :func:`exit_on_signals`) does not cut the stopping short: every process is still
        stopped, then the signal's exception is raised.
        """
        interrupted: BaseException | None = None
        for name in reversed(list(self.processes)):
            proc = self.processes.pop(name)
            if proc.pid is not None:
                self._say(f"stopping {name}")
            while True:
                try:
                    proc.stop()
                    break
                except (KeyboardInterrupt, Terminated) as exc:
                    interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted

    def first_exited(self) -> str | None:
        """Name of a service whose process has exited, if any."""
        for name, proc in self.processes.items():
            if proc.pid is not None and not proc.running():
                return name
        return None

    def wait(self, poll_s: float = 1.0) -> str:
        """Block until a service exits (a crash); return its name."""
        while True:
            name = self.first_exited()
            if name is not None:
                return name
            time.sleep(poll_s)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _require_port_free(spec: ServiceSpec) -> None:
    """Fail before starting ``spec`` if something already listens on its address.

    Otherwise its readiness probe could pass against that other server (a stack
    left running, another engine) while the new process dies on ``bind``.
    """
    parts = urlsplit(spec.url)
    if parts.hostname is None or parts.port is None:
        return
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
            pass
    except OSError:
        return
    raise StackError(f"cannot start {spec.name}: {parts.hostname}:{parts.port} is already in use")


class Terminated(SystemExit):
    """Raised in the main thread by SIGTERM (see :func:`exit_on_signals`)."""


@contextmanager
def exit_on_signals() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` and SIGINT into KeyboardInterrupt, once each.

    After the first signal, further SIGINT/SIGTERM are ignored so the cleanup
    that the exception triggers (stopping child process groups) is not cut short.
    Main thread only.
    """

    def handler(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(128 + signum)

    old_int = signal.signal(signal.SIGINT, handler)
    old_term = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def _tenant(
    gateway_url: str, admin_key: str, name: str, adapters: Sequence[str], *, existing_ok: bool
) -> tuple[str, str]:
    what = f"creating tenant {name!r}"
    try:
        with Client(gateway_url, admin_key, timeout_s=10.0) as gw:
            try:
                created = gw.send(admin_api.create_tenant(name, adapters=list(adapters)))
            except ServiceRefused as exc:
                if not (existing_ok and exc.status == 409):
                    raise
                what = f"issuing a key for existing tenant {name!r}"
                return name, gw.send(admin_api.add_api_key(name))
    except ServiceError as exc:
        raise StackError(f"{what} failed: {exc}") from exc
    try:
        tenant = created["tenant"]
        return str(tenant["name"] if isinstance(tenant, dict) else tenant), str(created["api_key"])
    except (KeyError, TypeError) as exc:
        raise StackError(f"{what}: unexpected answer {created!r:.300}") from exc


def create_tenant(
    gateway_url: str, admin_key: str, name: str, adapters: Sequence[str] = ("*",)
) -> tuple[str, str]:
    """Create a tenant through the gateway admin API; return ``(tenant, api_key)``."""
    return _tenant(gateway_url, admin_key, name, adapters, existing_ok=False)


def tenant_key(
    gateway_url: str, admin_key: str, name: str, adapters: Sequence[str] = ("*",)
) -> tuple[str, str]:
    """Like :func:`create_tenant`, but a tenant that exists already (a second ``driftgate
    up`` on the same state store) gets a new API key instead of an error."""
    return _tenant(gateway_url, admin_key, name, adapters, existing_ok=True)


@contextmanager
def embedded_stack(
    home: Path,
    *,
    engine_port: int,
    drift_port: int,
    gateway_port: int,
    engine: EngineSettings | None = None,
    admin_key: str = "",
    progress: bool = False,
) -> Iterator[StackConfig]:
    """The real embedded stack on the given ports with its files under ``home``."""
    settings = StackSettings(
        home=home,
        engine_port=engine_port,
        drift_port=drift_port,
        gateway_port=gateway_port,
        admin_key=admin_key,
    )
    config = stack_services(settings, engine or EngineSettings())
    with Stack(config.services, log_dir=config.log_dir, progress=progress):
        yield config
