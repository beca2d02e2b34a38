"""A pod's volumes as local directories, and container paths translated to them.

- a PersistentVolumeClaim: one directory per claim, shared by every pod that mounts it;
- an emptyDir: one directory per pod (``medium: Memory`` too: a plain directory);
- a ConfigMap or Secret: one directory per pod holding its keys (or ``items``) as files.

Kubernetes mounts ConfigMaps and Secrets read-only whatever the mount says; a mount or a
PVC volume marked ``readOnly`` is read-only too. The process runner enforces that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tests.deploy.rendered import Pod, PodConfigError, Rendered


@dataclass(frozen=True)
class Mount:
    volume: str
    #: Where the container sees it.
    mount_path: str
    #: The local directory standing in for it.
    host_dir: Path
    read_only: bool
    source: str


def plan_mounts(pod: Pod, rendered: Rendered, root: Path) -> list[Mount]:
    """Where each of ``pod``'s mounts lives under ``root`` (pure: creates nothing)."""
    volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
    mounts = []
    for m in pod.container.get("volumeMounts") or []:
        volume = volumes.get(m["name"])
        if volume is None:
            raise PodConfigError(f"{pod.name}: mount of undeclared volume {m['name']!r}")
        read_only = bool(m.get("readOnly"))
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]
            host, source = root / "pvc" / claim["claimName"], f"pvc/{claim['claimName']}"
            read_only = read_only or bool(claim.get("readOnly"))
        elif "emptyDir" in volume:
            host, source = root / "pods" / pod.name / m["name"], "emptyDir"
        elif "configMap" in volume or "secret" in volume:
            kind = "configMap" if "configMap" in volume else "secret"
            ref = volume[kind]
            name = ref["name"] if kind == "configMap" else ref["secretName"]
            host, source, read_only = root / "pods" / pod.name / m["name"], f"{kind}/{name}", True
        else:
            raise PodConfigError(f"{pod.name}: volume {m['name']!r} has an unmodelled source")
        if "subPath" in m:
            host = host / m["subPath"]
        mounts.append(Mount(m["name"], m["mountPath"], host, read_only, source))
    return mounts


def materialize(pod: Pod, rendered: Rendered, mounts: Sequence[Mount]) -> None:
    """Create the directories; write ConfigMap and Secret keys as files."""
    volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
    for mount in mounts:
        mount.host_dir.mkdir(parents=True, exist_ok=True)
        volume = volumes[mount.volume]
        if "configMap" in volume:
            data = rendered.config_maps.get(volume["configMap"]["name"])
            ref = volume["configMap"]
        elif "secret" in volume:
            data = rendered.secrets.get(volume["secret"]["secretName"])
            ref = volume["secret"]
        else:
            continue
        if data is None:
            raise PodConfigError(f"{pod.name}: {mount.source} not found")
        items = ref.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            target = mount.host_dir / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])


def to_host_path(value: str, mounts: Sequence[Mount]) -> str:
    """A container path under a mount, as the local path; anything else unchanged.

    >>> m = [Mount("a", "/var/lib/x", Path("/tmp/pvc/a"), True, "pvc/a")]
    >>> to_host_path("/var/lib/x/models", m), to_host_path("/var/lib/xy", m)
    ('/tmp/pvc/a/models', '/var/lib/xy')
    """
    if not value.startswith("/"):
        return value
    path = PurePosixPath(value)
    best: Mount | None = None
    for m in mounts:
        mp = PurePosixPath(m.mount_path)
        if (path == mp or mp in path.parents) and (
            best is None or len(m.mount_path) > len(best.mount_path)
        ):
            best = m
    if best is None:
        return value
    rest = path.relative_to(PurePosixPath(best.mount_path))
    return str(best.host_dir / rest) if str(rest) != "." else str(best.host_dir)
