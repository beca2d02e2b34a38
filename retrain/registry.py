"""The adapter registry: ``<registry>/<adapter>/<version>/`` in the PEFT layout + metadata.

A version appears only complete: training writes into a staging directory beside the
versions (same filesystem), the metadata file ``driftgate.json`` is written and synced
last, and one ``rename`` makes the version visible. A failure (out of disk included)
removes the staging directory, so nothing is ever half-registered. Version numbers are
never reused: the next one is above every directory and every number the caller reserves
(the state store's versions).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from driftgate.core.adapters import is_valid_adapter_name, lora_name
from retrain.adapter_files import check_servable
from retrain.errors import OutOfDisk, RegistryError, UnknownAdapter

META_FILE = "driftgate.json"
STAGING_PREFIX = ".staging-"
Status = Literal["candidate", "accepted", "rejected"]
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class VersionMetadata(BaseModel):
    """Content of ``driftgate.json`` (unknown keys kept: others may add theirs)."""

    model_config = ConfigDict(extra="allow")

    adapter: str
    version: int = Field(ge=1)
    lora_name: str
    status: Status = "candidate"
    parent_version: int | None = None
    base_model: str
    reason: str = ""
    created_at: float = Field(default_factory=time.time)
    run_id: str | None = None
    dataset: dict[str, Any] = Field(default_factory=dict)
    #: Tenants opted in to train the adapter when this version was trained (how many
    #: examples each gave: ``dataset["tenants"]``).
    training_tenants: list[str] = Field(default_factory=list)
    #: The gate's independent evidence: ``{"examples", "hash", "source"}`` of the golden
    #: set, or ``{"examples": 0, "allow_no_golden": true}`` when promoted without one.
    golden: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] | None = None
    decision: list[str] = Field(default_factory=list)


class Registry:
    """Versions of adapters under ``root`` (``driftgate.core.paths.registry_dir()`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def adapter_dir(self, adapter: str) -> Path:
        if not is_valid_adapter_name(adapter):
            raise UnknownAdapter(f"invalid adapter name {adapter!r}", param="adapter")
        return self.root / adapter

    def path(self, adapter: str, version: int) -> Path:
        return self.adapter_dir(adapter) / str(version)

    def adapters(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and is_valid_adapter_name(p.name)
        )

    def versions(self, adapter: str) -> list[int]:
        """Complete versions (with metadata), ascending."""
        d = self.adapter_dir(adapter)
        if not d.is_dir():
            return []
        return sorted(
            int(p.name) for p in d.iterdir() if p.name.isdigit() and (p / META_FILE).is_file()
        )

    def read(self, adapter: str, version: int) -> VersionMetadata:
        f = self.path(adapter, version) / META_FILE
        if not f.is_file():
            raise UnknownAdapter(f"version {adapter}@{version} is not in the registry")
        return VersionMetadata.model_validate_json(f.read_text())

    def entries(self, adapter: str | None = None) -> list[VersionMetadata]:
        names = [adapter] if adapter is not None else self.adapters()
        return [self.read(a, v) for a in names for v in self.versions(a)]

    @contextmanager
    def stage(self, adapter: str) -> Iterator[Path]:
        """A fresh staging directory for one version; removed unless committed."""
        d = self.adapter_dir(adapter)
        staging = d / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            d.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
        except OSError as exc:
            raise _disk_error(exc, f"cannot create staging directory in {d}") from exc
        try:
            yield staging
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def commit(
        self, staging: Path, meta: VersionMetadata, *, reserved: Iterable[int] = ()
    ) -> VersionMetadata:
        """Give the staged adapter the next free version number and make it visible.

        ``meta.version`` and ``meta.lora_name`` are overwritten with the number chosen.
        """
        adapter = meta.adapter
        d = self.adapter_dir(adapter)
        if staging.parent != d or not staging.name.startswith(STAGING_PREFIX):
            raise RegistryError(f"{staging} is not a staging directory of {adapter}")
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            if not (staging / name).is_file():
                raise RegistryError(f"staged adapter lacks {name}")
        check_servable(staging)
        version = max([0, *self._all_numbers(d), *reserved]) + 1
        for _ in range(100):
            final = meta.model_copy(
                update={"version": version, "lora_name": lora_name(adapter, version)}
            )
            try:
                _write_json(staging / META_FILE, final.model_dump(mode="json"))
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise _disk_error(exc, f"cannot write metadata of {adapter}@{version}") from exc
            try:
                os.rename(staging, d / str(version))
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    version += 1  # taken meanwhile by another run: try the next one
                    continue
                raise RegistryError(f"cannot register {adapter}@{version}: {exc}") from exc
            _fsync_dir(d)
            return final
        raise RegistryError(f"no free version number for {adapter}")

    def update(self, adapter: str, version: int, **changes: Any) -> VersionMetadata:
        """Rewrite a version's metadata atomically (status, evaluation, decision...)."""
        current = self.read(adapter, version)
        new = current.model_copy(update=changes)
        VersionMetadata.model_validate(new.model_dump())  # re-check the changed fields
        try:
            _write_json(self.path(adapter, version) / META_FILE, new.model_dump(mode="json"))
        except OSError as exc:
            raise _disk_error(exc, f"cannot update metadata of {adapter}@{version}") from exc
        return new

    def _all_numbers(self, d: Path) -> list[int]:
        if not d.is_dir():
            return []
        return [int(p.name) for p in d.iterdir() if p.name.isdigit()]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file, fsync, then replace: readers see old or new, whole."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_error(exc: OSError, message: str) -> RegistryError:
    if exc.errno in _DISK_FULL:
        return OutOfDisk(f"{message}: out of disk space")
    return RegistryError(f"{message}: {exc}")
