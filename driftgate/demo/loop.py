"""Reading the drift service's status for the demo: confirmed drift, score, retrain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DriftSummary:
    confirmed: bool
    score: float | None
    detail: str
    retrain_started: bool
    retrain_detail: str
    raw: dict[str, Any] = field(default_factory=dict)


def _as_float(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def drift_summary(status: dict[str, Any], adapter: str) -> DriftSummary:
    """Summarise ``GET /v1/drift/status`` for one adapter (tolerates an empty status).

    >>> s = drift_summary({"versions": [{"adapter": "support", "version": "1",
    ...     "drifted": ["negative_feedback"], "signals": {"negative_feedback": {"score": 4.2}}}],
    ...     "recent_triggers": [{"adapter": "support", "outcome": "started", "reason": "r"}]},
    ...     "support")
    >>> (s.confirmed, s.score, s.retrain_started)
    (True, 4.2, True)
    """
    confirmed: list[str] = []
    scores: list[float] = []
    for entry in status.get("versions", []):
        if not isinstance(entry, dict) or entry.get("adapter") != adapter:
            continue
        drifted = entry.get("drifted") or []
        if drifted:
            confirmed.append(f"v{entry.get('version')}: {', '.join(map(str, drifted))}")
        for sig in (entry.get("signals") or {}).values():
            score = _as_float(sig.get("score")) if isinstance(sig, dict) else None
            if score is not None:
                scores.append(score)
    started = [
        t
        for t in status.get("recent_triggers", [])
        if isinstance(t, dict) and t.get("adapter") == adapter and t.get("outcome") == "started"
    ]
    return DriftSummary(
        confirmed=bool(confirmed),
        score=max(scores) if scores else None,
        detail="; ".join(confirmed),
        retrain_started=bool(started),
        retrain_detail=str(started[0].get("reason", "")) if started else "",
        raw=status,
    )
