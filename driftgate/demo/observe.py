"""Read the loop's state from the running services (never from the demo's own guesses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class LoopObserver:
    """Polls the gateway (routes) and the drift service (status) for one adapter."""

    def __init__(self, gateway_url: str, drift_url: str, admin_key: str, adapter: str) -> None:
        self.adapter = adapter
        self._gw = httpx.Client(
            base_url=gateway_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10.0
        )
        self._drift = httpx.Client(base_url=drift_url, timeout=10.0)

    def close(self) -> None:
        self._gw.close()
        self._drift.close()

    def route(self) -> dict[int, float]:
        """The adapter's route weights by version (empty if unreachable)."""
        try:
            r = self._gw.get("/admin/routes")
            r.raise_for_status()
            weights = r.json()["routes"].get(self.adapter, {})
        except (httpx.HTTPError, ValueError, KeyError):
            return {}
        return {int(v): float(w) for v, w in weights.items()}

    def drift_status(self) -> dict[str, Any]:
        try:
            r = self._drift.get("/v1/drift/status")
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def rollouts(self) -> list[dict[str, Any]]:
        try:
            r = self._gw.get("/admin/rollouts", params={"adapter": self.adapter})
            if r.status_code == 404:
                return []
            r.raise_for_status()
            data = r.json().get("data", [])
        except (httpx.HTTPError, ValueError, AttributeError):
            return []
        return [d for d in data if isinstance(d, dict)]


class RetrainLogTail:
    """New progress lines (epochs, the run's outcome) of the retrain job's log files."""

    _INTERESTING = (
        "epoch ", "retrain run", "waiting for feedback", "training on", '"outcome"', '"message"',
    )

    def __init__(self, log_dir: Path, adapter: str) -> None:
        self._log_dir = log_dir
        self._adapter = adapter
        self._offsets: dict[Path, int] = {}

    def new_lines(self) -> list[str]:
        out: list[str] = []
        for path in sorted(self._log_dir.glob(f"retrain-{self._adapter}-*.log")):
            start = self._offsets.get(path, 0)
            with path.open("rb") as f:
                f.seek(start)
                chunk = f.read()
            self._offsets[path] = start + len(chunk)
            for raw in chunk.decode("utf-8", "replace").replace("\r", "\n").splitlines():
                line = raw.strip()
                if any(key in line for key in self._INTERESTING):
                    out.append(line)
        return out
