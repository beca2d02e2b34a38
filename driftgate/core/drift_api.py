"""The drift service's API (drift status, rollouts) as :class:`~driftgate.core.client.Call` s.

Send them with a :class:`~driftgate.core.client.Client` built with the drift service's
URL (and the admin key for the rollout commands). The routes are in
``drift/app.py`` and ``rollout/api.py``.
"""

from __future__ import annotations

from typing import Any

from driftgate.core.client import Call

Record = dict[str, Any]


def _record(data: Any) -> Record:
    return dict(data) if isinstance(data, dict) else {}


def drift_status(adapter: str | None = None) -> Call[Record]:
    """``/v1/drift/status``: detectors, stored alarms and triggers (of one adapter if given)."""
    params = {"adapter": adapter} if adapter else {}
    return Call("GET", "/v1/drift/status", _record, params=params)


def list_rollouts(adapter: str | None = None) -> Call[Any]:
    """``{"data": [rollout, ...]}``, oldest first, of one adapter if given."""
    params = {"adapter": adapter} if adapter else {}
    return Call("GET", "/v1/rollouts", params=params)


def get_rollout(rollout_id: int) -> Call[Any]:
    """One rollout with its recorded ``transitions``."""
    return Call("GET", f"/v1/rollouts/{rollout_id}")


def start_rollout(
    adapter: str, path: str, *, approved: bool | None = None, canary_weight: float | None = None
) -> Call[Any]:
    """A new rollout of the PEFT directory ``path`` as the adapter's candidate."""
    body: dict[str, Any] = {"adapter": adapter, "path": path}
    if approved is not None:
        body["approved"] = approved
    if canary_weight is not None:
        body["canary_weight"] = canary_weight
    return Call("POST", "/v1/rollouts", body=body)


def rollout_command(rollout_id: int, verb: str) -> Call[Any]:
    """``approve``, ``promote`` or ``rollback`` one rollout; its new record."""
    if verb not in ("approve", "promote", "rollback"):
        raise ValueError(f"unknown rollout command {verb!r}")
    return Call("POST", f"/v1/rollouts/{rollout_id}/{verb}")
