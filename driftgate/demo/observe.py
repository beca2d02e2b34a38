"""Read the loop's state from the running services (never from the demo's own guesses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftgate.core import admin_api, drift_api
from driftgate.core.client import Client, ServiceError


class LoopObserver:
    """Polls the gateway (routes) and the drift service (status) for one adapter."""

    def __init__(self, gateway_url: str, drift_url: str, admin_key: str, adapter: str) -> None:
        self.adapter = adapter
        self._gw = Client(gateway_url, admin_key, timeout_s=10.0)
        self._drift = Client(drift_url, admin_key, timeout_s=10.0)

    def close(self) -> None:
        self._gw.close()
        self._drift.close()

    def route(self) -> dict[int, float]:
        """The adapter's route weights by version (empty if unreachable)."""
        try:
            return self._gw.send(admin_api.get_routes()).get(self.adapter, {})
        except (ServiceError, ValueError, KeyError, AttributeError):
            return {}

    def drift_status(self) -> dict[str, Any]:
        """``/v1/drift/status``, its stored alarms and triggers those of this adapter."""
        try:
            return self._drift.send(drift_api.drift_status(self.adapter))
        except ServiceError:
            return {}

    def rollouts(self) -> list[dict[str, Any]]:
        """The adapter's rollouts, oldest first, each with its recorded transitions."""
        try:
            listed = self._drift.send(drift_api.list_rollouts(self.adapter))
            data = [d for d in listed.get("data", []) if isinstance(d, dict)]
            return [
                self._drift.send(drift_api.get_rollout(item["id"]))
                for item in sorted(data, key=lambda d: d.get("id", 0))
            ]
        except (ServiceError, AttributeError, KeyError):
            return []


def server_milestones(
    history: dict[str, Any], rollouts: list[dict[str, Any]], adapter: str, version: int
) -> dict[str, float]:
    """When the services recorded each step of the loop that produced ``version`` (Unix
    seconds, from the services' own clocks and rows, never the demo's polling).

    >>> alarm = {"adapter": "a", "signal": "feedback_score", "confirmed": True}
    >>> m = server_milestones(
    ...     {"recent_alarms": [alarm | {"ts": 5.0}, alarm | {"ts": 3.0},
    ...                        alarm | {"confirmed": False, "ts": 1.0},
    ...                        alarm | {"signal": "latency_ms", "ts": 2.0}],
    ...      "recent_triggers": [{"adapter": "a", "outcome": "started", "ts": 4.0,
    ...                           "reason": "confirmed feedback_score drift on a@1"}]},
    ...     [{"candidate_version": 2, "created_at": 6.0, "transitions": [
    ...         {"to": "loading", "ts": 7.0}, {"to": "canary", "ts": 8.0},
    ...         {"to": "promoted", "ts": 9.0}]}], "a", 2)
    >>> list(m.items())[:3]
    [('retrain triggered', 4.0), ('drift confirmed', 3.0), ('rollout created', 6.0)]
    >>> list(m.items())[3:]
    [('loading', 7.0), ('canary', 8.0), ('promoted', 9.0)]
    """
    out: dict[str, float] = {}
    started = sorted(
        (t for t in history.get("recent_triggers", [])
         if t.get("adapter") == adapter and t.get("outcome") == "started"),
        key=lambda t: float(t["ts"]),
    )  # fmt: skip
    if started:
        first = started[0]
        out["retrain triggered"] = float(first["ts"])
        # The confirmed alarm this trigger acted on: its signal is named in the reason.
        confirmed = [
            float(a["ts"])
            for a in history.get("recent_alarms", [])
            if a.get("adapter") == adapter
            and a.get("confirmed")
            and f"confirmed {a.get('signal')} drift" in str(first.get("reason", ""))
        ]
        if confirmed:
            out["drift confirmed"] = min(confirmed)
    for ro in rollouts:
        if ro.get("candidate_version") != version:
            continue
        out["rollout created"] = float(ro["created_at"])
        for t in ro.get("transitions", []):
            out.setdefault(str(t["to"]), float(t["ts"]))
    return out


def confirmed_by_signal(
    status: dict[str, Any], adapter: str, version: int, known: dict[str, float] | None = None
) -> dict[str, float]:
    """When each signal of ``adapter`` version ``version`` was first confirmed as drifted
    (Unix seconds, from the stored alarms in a drift status), merged into ``known`` (the
    status lists the newest alarms only, so the loop merges every poll).

    >>> alarm = {"adapter": "a", "version": "1", "confirmed": True}
    >>> confirmed_by_signal({"recent_alarms": [
    ...     alarm | {"signal": "feedback_score", "ts": 5.0},
    ...     alarm | {"signal": "feedback_score", "ts": 9.0},
    ...     alarm | {"signal": "prompt_embedding", "ts": 7.0, "version": "2"},
    ...     alarm | {"signal": "mean_logprob", "ts": 3.0, "confirmed": False}]},
    ...     "a", 1, {"prompt_embedding": 6.0})
    {'prompt_embedding': 6.0, 'feedback_score': 5.0}
    """
    out = dict(known or {})
    for a in status.get("recent_alarms", []):
        if (
            isinstance(a, dict)
            and a.get("adapter") == adapter
            and str(a.get("version")) == str(version)
            and a.get("confirmed")
            and isinstance(a.get("ts"), int | float)
        ):
            signal = str(a.get("signal"))
            out[signal] = min(float(a["ts"]), out.get(signal, float("inf")))
    return out


class RetrainLogTail:
    """New progress lines (epochs, the run's outcome) of the retrain job's log files."""

    _INTERESTING = (
        "epoch ",
        "retrain run",
        "waiting for feedback",
        "training on",
        '"outcome"',
        '"message"',
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
