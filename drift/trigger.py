"""Retrain triggers: start a retrain once per confirmed drift, deduplicated, with a cooldown.

A :class:`Launcher` starts the retrain job and says whether one still runs
for an adapter: :class:`SubprocessLauncher` (embedded default: ``python -m
retrain run --adapter NAME --reason R``, output to a log file) or
:class:`KubernetesLauncher` (a ``batch/v1`` Job created from a template
through the Kubernetes API with the pod's service-account token).
:class:`TriggerManager` applies the policy and records every decision.

Job template contract (Kubernetes): a YAML or JSON ``batch/v1`` Job manifest;
every string in it may use ``$ADAPTER``, ``$VERSION``, ``$REASON`` and
``$JOB_NAME``. The launcher sets ``metadata.name`` to the job name and adds
the label ``driftgate.io/adapter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Protocol

import httpx
import yaml

from drift.metrics import DriftMetrics
from drift.store import DriftStore
from driftgate.core.adapters import BASE_LABEL

ADAPTER_LABEL = "driftgate.io/adapter"


class TriggerError(Exception):
    """The retrain job could not be started."""


class Launcher(Protocol):
    mode: str

    async def running(self, adapter: str) -> bool: ...

    async def start(self, adapter: str, version: int, reason: str) -> str:
        """Start a retrain; return a short description (pid, job name)."""
        ...

    async def close(self) -> None: ...


class SubprocessLauncher:
    """Runs the retrain job as a child process, one per adapter at a time."""

    mode = "subprocess"

    def __init__(self, command: list[str], log_dir: Path, *, stop_on_close: bool = True) -> None:
        self.command = list(command) or [sys.executable, "-m", "retrain"]
        self.log_dir = log_dir
        self.stop_on_close = stop_on_close
        self._procs: dict[str, asyncio.subprocess.Process] = {}

    async def running(self, adapter: str) -> bool:
        proc = self._procs.get(adapter)
        if proc is None:
            return False
        if proc.returncode is None:
            return True
        del self._procs[adapter]
        return False

    async def start(self, adapter: str, version: int, reason: str) -> str:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"retrain-{adapter}-{int(time.time())}.log"
        argv = [*self.command, "run", "--adapter", adapter, "--reason", reason]
        try:
            with log_path.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        except OSError as exc:
            raise TriggerError(f"cannot start {argv[0]}: {exc}") from exc
        self._procs[adapter] = proc
        return f"pid {proc.pid}, log {log_path}"

    def processes(self) -> dict[str, asyncio.subprocess.Process]:
        return dict(self._procs)

    async def close(self, grace_s: float = 10.0) -> None:
        """Reap finished children. Running retrains are stopped (their whole process
        group: SIGTERM, then SIGKILL after ``grace_s``) when ``stop_on_close``, so that
        stopping the embedded stack stops everything it started; else left to finish."""
        for adapter in list(self._procs):
            proc = self._procs[adapter]
            if self.stop_on_close and proc.returncode is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), grace_s)
                except TimeoutError:
                    _signal_group(proc.pid, signal.SIGKILL)
                    await proc.wait()
            await self.running(adapter)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _job_name(adapter: str) -> str:
    safe = re.sub(r"[^a-z0-9-]", "-", adapter.lower()).strip("-")[:40] or "adapter"
    return f"retrain-{safe}-{int(time.time() * 1000) % 10**10}"


def _substitute(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return Template(node).safe_substitute(values)
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    return node


def render_job(template: str, adapter: str, version: int, reason: str) -> dict[str, Any]:
    """The Job manifest for one retrain, from the template text.

    >>> tpl = "spec: {template: {spec: {containers: [{args: [--adapter, $ADAPTER]}]}}}"
    >>> job = render_job(tpl, "support", 3, "drift")
    >>> job["spec"]["template"]["spec"]["containers"][0]["args"]
    ['--adapter', 'support']
    >>> job["metadata"]["labels"]["driftgate.io/adapter"]
    'support'
    """
    manifest = yaml.safe_load(template)
    if not isinstance(manifest, dict):
        raise TriggerError("job template is not a mapping")
    name = _job_name(adapter)
    values = {"ADAPTER": adapter, "VERSION": str(version), "REASON": reason, "JOB_NAME": name}
    job: dict[str, Any] = _substitute(manifest, values)
    job.setdefault("apiVersion", "batch/v1")
    job.setdefault("kind", "Job")
    meta = job.setdefault("metadata", {})
    meta["name"] = name
    meta.pop("generateName", None)
    meta.setdefault("labels", {})[ADAPTER_LABEL] = adapter
    return job


class KubernetesLauncher:
    """Creates the retrain Job through the Kubernetes API."""

    mode = "kubernetes"

    def __init__(
        self,
        api_url: str,
        namespace: str,
        template_path: Path,
        token_file: Path,
        ca_file: Path | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.namespace = namespace
        self.template_path = template_path
        self.token_file = token_file
        verify: Any = str(ca_file) if ca_file is not None and ca_file.exists() else True
        self._client = httpx.AsyncClient(
            base_url=self.api_url,
            verify=verify,
            timeout=httpx.Timeout(10.0),
            transport=transport,
            trust_env=False,  # the API server is reached directly, never through a proxy
        )

    def _headers(self) -> dict[str, str]:
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise TriggerError(f"cannot read service-account token: {exc}") from exc
        return {"Authorization": f"Bearer {token}"}

    @property
    def _jobs_path(self) -> str:
        return f"/apis/batch/v1/namespaces/{self.namespace}/jobs"

    async def running(self, adapter: str) -> bool:
        try:
            resp = await self._client.get(
                self._jobs_path,
                params={"labelSelector": f"{ADAPTER_LABEL}={adapter}"},
                headers=self._headers(),
            )
        except httpx.HTTPError as exc:
            raise TriggerError(f"kubernetes API unreachable: {exc!r}") from exc
        if resp.status_code != 200:
            raise TriggerError(f"listing jobs failed: HTTP {resp.status_code} {resp.text[:200]}")
        for item in resp.json().get("items", []):
            status = item.get("status") or {}
            done = status.get("completionTime") or any(
                c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            if not done:
                return True
        return False

    async def start(self, adapter: str, version: int, reason: str) -> str:
        try:
            template = self.template_path.read_text()
        except OSError as exc:
            raise TriggerError(f"cannot read job template: {exc}") from exc
        job = render_job(template, adapter, version, reason)
        try:
            resp = await self._client.post(self._jobs_path, json=job, headers=self._headers())
        except httpx.HTTPError as exc:
            raise TriggerError(f"kubernetes API unreachable: {exc!r}") from exc
        if resp.status_code not in (200, 201, 202):
            raise TriggerError(f"creating job failed: HTTP {resp.status_code} {resp.text[:200]}")
        return f"job {self.namespace}/{job['metadata']['name']}"

    async def close(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    adapter: str
    outcome: str  # started | running | cooldown | off | base | failed
    detail: str


class TriggerManager:
    """Starts at most one retrain per adapter at a time, and none within the cooldown."""

    def __init__(
        self,
        launcher: Launcher | None,
        store: DriftStore,
        metrics: DriftMetrics,
        cooldown_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.launcher = launcher
        self.store = store
        self.metrics = metrics
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = asyncio.Lock()
        self._last_started: dict[str, float] = {}

    @property
    def mode(self) -> str:
        return "off" if self.launcher is None else self.launcher.mode

    async def _decide(self, adapter: str, version: int, reason: str) -> tuple[str, str]:
        if adapter == BASE_LABEL:
            return "base", "the base model has no adapter to retrain"
        if self.launcher is None:
            return "off", "trigger mode is off"
        if await self.launcher.running(adapter):
            return "running", "a retrain of this adapter is still running"
        last = self._last_started.get(adapter)
        if last is None:
            last = await asyncio.to_thread(self.store.last_started_trigger_ts, adapter)
        if last is not None and self.clock() - last < self.cooldown_s:
            return "cooldown", f"last retrain started {self.clock() - last:.0f}s ago"
        detail = await self.launcher.start(adapter, version, reason)
        self._last_started[adapter] = self.clock()
        return "started", detail

    async def on_confirmed(
        self, adapter: str, version: int, signal: str, reason: str
    ) -> TriggerDecision:
        """Decide, start if due, and record the decision with its reason."""
        async with self._lock:
            try:
                outcome, detail = await self._decide(adapter, version, reason)
            except TriggerError as exc:
                outcome, detail = "failed", str(exc)
            await asyncio.to_thread(
                self.store.record_trigger,
                adapter=adapter,
                version=version,
                reason=reason,
                mode=self.mode,
                outcome=outcome,
                detail=detail,
            )
            self.metrics.trigger_decisions.labels(adapter, outcome).inc()
            if outcome == "started":
                self.metrics.triggers.labels(adapter, signal).inc()
            return TriggerDecision(adapter, outcome, detail)

    async def close(self) -> None:
        if self.launcher is not None:
            await self.launcher.close()


def make_launcher(settings: Any) -> Launcher | None:
    """The launcher the settings ask for (``None`` when triggers are off)."""
    if settings.trigger_mode == "off":
        return None
    if settings.trigger_mode == "kubernetes":
        if settings.k8s_job_template is None:
            raise ValueError("DRIFTGATE_DRIFT_K8S_JOB_TEMPLATE is required in kubernetes mode")
        return KubernetesLauncher(
            settings.k8s_api_url,
            settings.k8s_namespace,
            settings.k8s_job_template,
            settings.k8s_token_file,
            settings.k8s_ca_file,
        )
    return SubprocessLauncher(
        settings.trigger_command,
        settings.trigger_log_dir,
        stop_on_close=settings.trigger_stop_on_shutdown,
    )
