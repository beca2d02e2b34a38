"""The rendered chart run as local processes: one per pod, probed as the kubelet would.

``LocalCluster(rendered, root, images, external=...)`` plans every pod of the
Deployments and StatefulSets, starts them together (as a cluster would), polls their
startup, readiness and liveness probes with the probes' own periods and thresholds, and
routes every connection between them through :class:`~tests.deploy.proxy.PolicyProxy`.
Read-only mounts are bind-mounted read-only in a private mount namespace of the process
(``unshare -m``, which needs root): a write there fails in the process as in the pod.

Not modelled: the Kubernetes API (the drift service's retrain Jobs), init containers,
sidecars, resource limits, restarts (a failed liveness probe is recorded, and fails the
test, rather than acted on).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.deploy.dns import Target, dns_table, names_of
from tests.deploy.images import REPO_ROOT, LocalImage
from tests.deploy.launch import LaunchPlan, listen_args, plan_launch
from tests.deploy.policy import Endpoint
from tests.deploy.proxy import Backend, FlowLog, PolicyProxy, Route
from tests.deploy.rendered import Pod, Rendered
from tests.deploy.volumes import materialize, plan_mounts, to_host_path

EXTERNAL_NAMESPACE = "(outside)"
RO_WRAPPER = (
    'n=$1; shift; i=0; while [ "$i" -lt "$n" ]; do '
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 97; '
    'shift; i=$((i+1)); done; exec "$@"'
)


@dataclass(frozen=True)
class External:
    """A service the chart names but does not run (``postgresql`` of ``state.url``)."""

    name: str
    port: int
    local_port: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def can_mount_read_only() -> bool:
    if os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@dataclass
class PodRun:
    plan: LaunchPlan
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    started: bool = False
    failure: str | None = None
    ready_at: float | None = None
    events: list[str] = field(default_factory=list)

    @property
    def pod(self) -> Pod:
        return self.plan.pod

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


class LocalCluster:
    def __init__(
        self,
        rendered: Rendered,
        root: Path,
        images: Sequence[LocalImage],
        external: Sequence[External] = (),
    ) -> None:
        self.rendered = rendered
        self.root = root
        self.external = {e.name: e for e in external}
        self.flows = FlowLog()
        self.proxy = PolicyProxy(rendered.policies, self.flows)
        self._routes: dict[tuple[str, Target, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = time.monotonic()
        ns = rendered.namespace
        subdomains: dict[str, list[str]] = {}
        for pod in rendered.pods:
            if pod.subdomain:
                subdomains.setdefault(pod.subdomain, []).append(pod.name)
        self.dns = dns_table(ns, rendered.services, subdomains)
        for ext in external:
            self.dns.update({n: Target(ext.name) for n in names_of(ext.name, ns)})
        self.runs: dict[str, PodRun] = {}
        for pod in rendered.pods:
            mounts = plan_mounts(pod, rendered, root)
            listen = {port: free_port() for port in pod.container_ports}
            plan = plan_launch(pod, rendered, mounts, listen, self.dns, self._route_for, images)
            self.runs[pod.name] = PodRun(plan, root / "logs" / f"{pod.name}.log")

    # ---- endpoints and routes -------------------------------------------------------

    def endpoint(self, pod: Pod) -> Endpoint:
        return Endpoint(pod.name, pod.namespace, pod.labels, pod.named_ports)

    def backends_of(self, service: str, port: int) -> list[Backend]:
        """The endpoints a connection to ``service:port`` may reach now (ready pods)."""
        return self._backends(Target(service), port)

    def _backends(self, target: Target, port: int) -> list[Backend]:
        if target.service in self.external:
            ext = self.external[target.service]
            outside = Endpoint(ext.name, EXTERNAL_NAMESPACE, in_cluster=False)
            return [Backend(outside, ext.port, ext.local_port)]
        service = self.rendered.services[target.service]
        if port not in service.ports:
            return []
        target_port = service.ports[port]
        out = []
        for pod in self.rendered.find_pods(service.selector):
            run = self.runs[pod.name]
            if target.pod is not None and pod.name != target.pod:
                continue
            running = run.process is not None and run.process.poll() is None
            if not (run.ready or (service.publish_not_ready and running)):
                continue
            number = (
                pod.named_ports.get(str(target_port))
                if isinstance(target_port, str)
                else target_port
            )
            if number is None or number not in run.plan.listen:
                continue
            out.append(Backend(self.endpoint(pod), number, run.plan.listen[number]))
        return out

    def _route(self, caller: Endpoint, target: Target, port: int) -> str:
        key = (caller.name, target, port)
        with self._lock:
            if key not in self._routes:
                label = f"{target.pod}.{target.service}" if target.pod else target.service
                route = Route(caller, label, port, lambda: self._backends(target, port))
                self._routes[key] = self.proxy.add_route(route)
            return f"127.0.0.1:{self._routes[key]}"

    def _route_for(self, pod: Pod, target: Target, port: int) -> str:
        return self._route(self.endpoint(pod), target, port)

    def host_path(self, pod: str, container_path: str) -> Path:
        """Where ``container_path`` of ``pod`` lies here (under one of its mounts)."""
        local = to_host_path(container_path, self.runs[pod].plan.mounts)
        if local == container_path:
            raise KeyError(f"{container_path} is on no volume of {pod}")
        return Path(local)

    def client(self, name: str, namespace: str, labels: Mapping[str, str] | None = None) -> Client:
        """A caller outside the rendered workloads (a client app, an operator, Prometheus)."""
        return Client(self, Endpoint(name, namespace, dict(labels or {})))

    # ---- processes --------------------------------------------------------------------

    def start(self) -> None:
        read_only = can_mount_read_only()
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        for run in self.runs.values():
            materialize(run.pod, self.rendered, run.plan.mounts)
        for run in self.runs.values():
            argv = list(run.plan.argv)
            ro = run.plan.read_only_dirs
            if ro:
                if not read_only:
                    raise RuntimeError("read-only mounts need root and `unshare -m`")
                argv = [
                    "unshare",
                    "-m",
                    "sh",
                    "-c",
                    RO_WRAPPER,
                    "sh",
                    str(len(ro)),
                    *map(str, ro),
                    *argv,
                ]
            log = run.log_path.open("wb")
            run.process = subprocess.Popen(
                argv,
                env=run.plan.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            run.events.append(f"{self._now():.1f}s started pid {run.process.pid}")
            thread = threading.Thread(target=self._kubelet, args=(run,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _probe_once(self, run: PodRun, probe: Mapping[str, Any]) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = get["port"]
            number = run.pod.named_ports[port] if isinstance(port, str) else int(port)
            url = f"http://127.0.0.1:{run.plan.listen[number]}{get.get('path', '/')}"
            try:
                return 200 <= httpx.get(url, timeout=timeout).status_code < 400
            except httpx.HTTPError:
                return False
        if "tcpSocket" in probe:
            port = probe["tcpSocket"]["port"]
            number = run.pod.named_ports[port] if isinstance(port, str) else int(port)
            try:
                socket.create_connection(("127.0.0.1", run.plan.listen[number]), timeout).close()
                return True
            except OSError:
                return False
        if "exec" in probe:
            argv = listen_args([str(a) for a in probe["exec"]["command"]], run.plan.listen)
            try:
                done = subprocess.run(argv, env=run.plan.env, capture_output=True, timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                return False
            return done.returncode == 0
        raise ValueError(f"{run.pod.name}: probe kind not modelled: {probe}")

    def _sleep(self, seconds: float) -> bool:
        return not self._stop.wait(seconds)

    def _kubelet(self, run: PodRun) -> None:
        """Startup, then readiness and liveness, with the probes' periods and thresholds."""
        container = run.pod.container
        startup = container.get("startupProbe")
        if startup is not None:
            if not self._sleep(float(startup.get("initialDelaySeconds", 0))):
                return
            failures = 0
            while not self._probe_once(run, startup):
                failures += 1
                if failures >= int(startup.get("failureThreshold", 3)):
                    run.failure = f"startup probe failed {failures} times"
                    return
                if self._exited(run) or not self._sleep(float(startup.get("periodSeconds", 10))):
                    return
        run.started = True
        readiness = container.get("readinessProbe")
        liveness = container.get("livenessProbe")
        next_ready = self._now() + (
            0 if startup else float((readiness or {}).get("initialDelaySeconds", 0))
        )
        next_live = self._now() + (
            0 if startup else float((liveness or {}).get("initialDelaySeconds", 0))
        )
        ok_streak = fail_streak = live_fails = 0
        if readiness is None:
            self._set_ready(run, True)
        while not self._stop.is_set() and not self._exited(run):
            now = self._now()
            if readiness is not None and now >= next_ready:
                if self._probe_once(run, readiness):
                    ok_streak, fail_streak = ok_streak + 1, 0
                    if ok_streak >= int(readiness.get("successThreshold", 1)):
                        self._set_ready(run, True)
                else:
                    ok_streak, fail_streak = 0, fail_streak + 1
                    if fail_streak >= int(readiness.get("failureThreshold", 3)):
                        self._set_ready(run, False)
                next_ready = now + float(readiness.get("periodSeconds", 10))
            if liveness is not None and now >= next_live:
                if self._probe_once(run, liveness):
                    live_fails = 0
                else:
                    live_fails += 1
                    if live_fails >= int(liveness.get("failureThreshold", 3)):
                        run.failure = f"liveness probe failed {live_fails} times (would restart)"
                        return
                next_live = now + float(liveness.get("periodSeconds", 10))
            self._sleep(0.2)

    def _exited(self, run: PodRun) -> bool:
        assert run.process is not None
        code = run.process.poll()
        if code is not None and run.failure is None and not self._stop.is_set():
            run.failure = f"exited with code {code}"
        return code is not None

    def _set_ready(self, run: PodRun, ready: bool) -> None:
        if ready != run.ready:
            run.ready = ready
            run.events.append(f"{self._now():.1f}s {'ready' if ready else 'NOT ready'}")
            if ready and run.ready_at is None:
                run.ready_at = self._now()

    def wait_ready(self, timeout_s: float) -> None:
        """Every pod ready, or AssertionError naming the pods that are not, with log tails."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            failed = [r for r in self.runs.values() if r.failure]
            if failed:
                break
            if all(r.ready for r in self.runs.values()):
                return
            time.sleep(0.5)
        bad = [r for r in self.runs.values() if r.failure or not r.ready]
        report = "\n\n".join(
            f"--- {r.pod.name}: {r.failure or 'not ready'} after {self._now():.0f}s; "
            f"log tail:\n{r.log_tail()}"
            for r in bad
        )
        raise AssertionError(f"pods that never got ready:\n{report}")

    def failures(self) -> list[str]:
        return [f"{r.pod.name}: {r.failure}" for r in self.runs.values() if r.failure]

    def summary(self) -> str:
        lines = ["pods:"]
        for run in self.runs.values():
            p = run.plan
            lines.append(
                f"  {run.pod.name} ({run.pod.workload}) listen {p.listen} "
                f"ready at {run.ready_at if run.ready_at is None else round(run.ready_at, 1)}s; "
                + "; ".join(run.events)
            )
            for m in p.mounts:
                lines.append(
                    f"    mount {m.mount_path} <- {m.source}{' (read-only)' if m.read_only else ''}"
                )
            for target, port in sorted(set(p.wired), key=str):
                lines.append(
                    f"    wired to {target.pod + '.' if target.pod else ''}{target.service}:{port}"
                )
        lines.append("flows (caller -> service:port (pod) count verdict):")
        lines.extend(f"  {line}" for line in self.flows.summary())
        return "\n".join(lines)

    def stop(self) -> None:
        self._stop.set()
        for run in self.runs.values():
            if run.process is not None:
                _signal_group(run.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for run in self.runs.values():
            if run.process is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(run.process.pid, signal.SIGKILL)
            run.process.wait(5)
        for thread in self._threads:
            thread.join(timeout=5)
        self.proxy.close()


def _signal_group(pid: int, sig: int) -> None:
    """The whole process group (vLLM's engine-core children too), gone or not."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@dataclass(frozen=True)
class Client:
    """A caller outside the workloads; its connections go through the policy proxy too."""

    cluster: LocalCluster
    endpoint: Endpoint

    def url(self, service: str, port: int, pod: str | None = None) -> str:
        """The Service's address for this caller; with ``pod``, that one endpoint of it
        (as a pod IP would be), still policy-checked."""
        return "http://" + self.cluster._route(self.endpoint, Target(service, pod), port)
