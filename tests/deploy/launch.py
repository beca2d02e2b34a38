"""How one rendered pod becomes a local command line (pure: nothing starts here).

The container's ``command`` + ``args`` and its resolved environment, rewritten the way
the pod's network and mounts would present them here:

- every cluster DNS name with a port (``<svc>[.<ns>[.svc[.cluster.local]]]:<port>``, a
  StatefulSet pod's own name) becomes ``127.0.0.1:<port of this caller's proxy route>``;
- the pod's own listen address: ``--host 0.0.0.0`` binds loopback, and a ``--port`` or
  ``*_PORT`` equal to a container port becomes that port's local number;
- a container path under a mount becomes the mount's local directory;
- the image's entry point and flags adapted by its :class:`~tests.deploy.images.LocalImage`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.dns import Target, rewrite
from tests.deploy.images import LocalImage, base_env
from tests.deploy.rendered import Pod, PodConfigError, Rendered, resolve_env
from tests.deploy.volumes import Mount, to_host_path

#: (calling pod, DNS target, port) -> the loopback address of that caller's route.
RouteFor = Callable[[Pod, Target, int], str]


@dataclass(frozen=True)
class LaunchPlan:
    pod: Pod
    argv: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    #: Container port -> local port the process listens on.
    listen: dict[int, int]
    #: (target, port) pairs this pod was wired to reach, for the report.
    wired: list[tuple[Target, int]]

    @property
    def read_only_dirs(self) -> list[Path]:
        return [m.host_dir for m in self.mounts if m.read_only]


def _image_for(pod: Pod, images: Sequence[LocalImage]) -> LocalImage:
    image = str(pod.container["image"])
    for candidate in images:
        if image.split(":")[0] == candidate.repository:
            return candidate
    raise PodConfigError(f"{pod.name}: no local stand-in for image {image}")


def listen_args(argv: list[str], listen: Mapping[int, int]) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if prev == "--host" and arg == "0.0.0.0":
            arg = "127.0.0.1"
        elif arg == "--host=0.0.0.0":
            arg = "--host=127.0.0.1"
        elif prev in ("--port", "-p") and arg.isdigit() and int(arg) in listen:
            arg = str(listen[int(arg)])
        elif arg.startswith("--port=") and arg[7:].isdigit() and int(arg[7:]) in listen:
            arg = f"--port={listen[int(arg[7:])]}"
        out.append(arg)
    return out


def _listen_env(env: dict[str, str], listen: Mapping[int, int]) -> dict[str, str]:
    out = dict(env)
    for key, value in env.items():
        if key.endswith("_PORT") and value.isdigit() and int(value) in listen:
            out[key] = str(listen[int(value)])
        elif key.endswith("_HOST") and value == "0.0.0.0":
            out[key] = "127.0.0.1"
    return out


def plan_launch(
    pod: Pod,
    rendered: Rendered,
    mounts: list[Mount],
    listen: dict[int, int],
    dns: Mapping[str, Target],
    route_for: RouteFor,
    images: Sequence[LocalImage],
) -> LaunchPlan:
    container = pod.container
    image = _image_for(pod, images)
    argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    if not argv:
        raise PodConfigError(f"{pod.name}: no command (the image's entry point is not modelled)")
    wired: list[tuple[Target, int]] = []

    def address(target: Target, port: int) -> str:
        return route_for(pod, target, port)

    def translate(value: str) -> str:
        value, hits = rewrite(value, dns, address)
        wired.extend(hits)
        return to_host_path(value, mounts)

    pod_env = {k: translate(v) for k, v in resolve_env(pod, rendered).items()}
    env = {**base_env(), **image.env, **_listen_env(pod_env, listen)}
    argv = image.adapt_args(listen_args([translate(a) for a in argv], listen))
    return LaunchPlan(pod, argv, env, mounts, listen, wired)
