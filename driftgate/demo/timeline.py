"""What happened when: the demo's record of phases, loop milestones and samples."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Milestone:
    t: float
    kind: str
    detail: str


@dataclass
class Sample:
    """Polled state of the loop at time ``t`` (seconds since the demo started)."""

    t: float
    drift_score: float | None
    canary_weight: float | None
    serving_versions: dict[str, float]


@dataclass
class Timeline:
    start: float = field(default_factory=time.time)
    milestones: list[Milestone] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def now(self) -> float:
        return time.time() - self.start

    def mark(self, kind: str, detail: str = "") -> Milestone:
        m = Milestone(self.now(), kind, detail)
        self.milestones.append(m)
        print(f"[demo {m.t:6.1f}s] {kind}: {detail}", flush=True)
        return m

    def first(self, kind: str) -> Milestone | None:
        return next((m for m in self.milestones if m.kind == kind), None)
