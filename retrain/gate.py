"""The evaluation gate: promote a candidate only if it beats the serving version.

Pure: scores in, decision with reasons out. The candidate must beat the version now serving
(the base model when none serves) on the held-out split by ``margin`` on the task metric and
reach ``golden_floor`` on the golden set. ROUGE-L is carried along for the report; it never
decides.

The held-out split is curated from traffic and feedback, so whoever writes feedback also
writes the exam. The golden set is the evidence nobody outside the adapter's owner can
change (registered once in the registry, never from traffic or feedback): without one the
gate refuses, unless the policy opts out (``require_golden=False``, which the retrain job
logs at WARNING and records in the version's metadata).

>>> golden = SplitScores(task=0.9, rouge_l=0.5, n=8)
>>> cand = EvalReport(heldout=SplitScores(task=0.9, rouge_l=0.5, n=20), golden=golden)
>>> serving = EvalReport(heldout=SplitScores(task=0.6, rouge_l=0.7, n=20), golden=golden)
>>> decide(cand, serving, GatePolicy(margin=0.05)).promote
True
>>> decide(serving, cand, GatePolicy(margin=0.05)).promote
False
>>> no_golden = EvalReport(heldout=cand.heldout)
>>> decide(no_golden, serving, GatePolicy(margin=0.05)).promote
False
>>> decide(no_golden, serving, GatePolicy(margin=0.05, require_golden=False)).promote
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SplitScores:
    """Mean task metric and ROUGE-L over ``n`` examples of one split."""

    task: float
    rouge_l: float
    n: int


@dataclass(frozen=True, slots=True)
class EvalReport:
    heldout: SplitScores
    golden: SplitScores | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GatePolicy:
    #: The candidate's held-out task score must exceed the serving one by at least this.
    margin: float = 0.02
    #: Minimum golden-set task score.
    golden_floor: float = 0.0
    #: If set, the candidate may score at most this much below serving on the golden set.
    golden_max_drop: float | None = None
    #: Fewer held-out examples than this cannot show anything: reject.
    min_heldout: int = 1
    #: No golden set, no promotion (the held-out split alone comes from feedback).
    require_golden: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin {self.margin} outside [0, 1]")
        if not 0.0 <= self.golden_floor <= 1.0:
            raise ValueError(f"golden_floor {self.golden_floor} outside [0, 1]")
        if self.golden_max_drop is not None and not 0.0 <= self.golden_max_drop <= 1.0:
            raise ValueError(f"golden_max_drop {self.golden_max_drop} outside [0, 1]")
        if self.min_heldout < 1:
            raise ValueError("min_heldout must be >= 1")


@dataclass(frozen=True, slots=True)
class GateDecision:
    promote: bool
    reasons: list[str]
    candidate: EvalReport
    serving: EvalReport | None
    policy: GatePolicy = field(default_factory=GatePolicy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": list(self.reasons),
            "candidate": self.candidate.to_dict(),
            "serving": None if self.serving is None else self.serving.to_dict(),
            "policy": asdict(self.policy),
        }


def decide(
    candidate: EvalReport, serving: EvalReport | None, policy: GatePolicy | None = None
) -> GateDecision:
    """Apply ``policy``; every check adds a reason, passing or failing."""
    pol = policy or GatePolicy()
    ok = True
    reasons: list[str] = []
    c, s = candidate.heldout, serving.heldout if serving is not None else None
    if c.n < pol.min_heldout:
        ok = False
        reasons.append(f"held-out split has {c.n} examples, fewer than {pol.min_heldout}")
    base = s.task if s is not None else 0.0
    need = base + pol.margin
    # A tiny epsilon keeps 0.7 + 0.1 >= 0.8 true despite binary floating point.
    beats = c.task + 1e-9 >= need if pol.margin > 0 else c.task > base
    if beats:
        reasons.append(f"held-out task {c.task:.3f} >= serving {base:.3f} + margin {pol.margin}")
    else:
        ok = False
        reasons.append(
            f"held-out task {c.task:.3f} does not beat serving {base:.3f} by margin {pol.margin}"
        )
    if candidate.golden is None or candidate.golden.n == 0:
        if pol.require_golden:
            ok = False
            reasons.append(
                "no golden set: promotion needs evidence independent of feedback "
                "(register one with `python -m retrain golden`)"
            )
        else:
            reasons.append("no golden set: judged on the held-out split alone (opted out)")
    else:
        g = candidate.golden
        if g.task + 1e-9 >= pol.golden_floor:
            reasons.append(f"golden task {g.task:.3f} >= floor {pol.golden_floor}")
        else:
            ok = False
            reasons.append(f"golden task {g.task:.3f} below floor {pol.golden_floor}")
        sg = serving.golden if serving is not None else None
        if pol.golden_max_drop is not None and sg is not None:
            if g.task + 1e-9 >= sg.task - pol.golden_max_drop:
                reasons.append(f"golden task within {pol.golden_max_drop} of serving {sg.task:.3f}")
            else:
                ok = False
                reasons.append(
                    f"golden task {g.task:.3f} dropped more than {pol.golden_max_drop} "
                    f"below serving {sg.task:.3f}"
                )
    rouge_s = f"{s.rouge_l:.3f}" if s is not None else "n/a"
    reasons.append(f"rouge-l (reported only): candidate {c.rouge_l:.3f}, serving {rouge_s}")
    return GateDecision(
        promote=ok, reasons=reasons, candidate=candidate, serving=serving, policy=pol
    )
