"""Read the loop's state from the running services (never from the demo's own guesses)."""

from __future__ import annotations

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
