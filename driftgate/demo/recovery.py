"""Did the loop recover? A one-sided binomial test on a fixed, seeded set of drifted tickets.

Live traffic after a promotion is a few dozen tickets whose draw depends on timing, too
few to tell a new version at 96% from one at 90%. The recovery check instead scores a
fixed set of ``n`` held-out drifted tickets (never sent as traffic, never labelled),
pinned to the promoted version at temperature 0, and tests

    H0: the version's accuracy on drifted traffic is at least ``goal``

at level ``alpha``: the loop fails when fewer than ``threshold(n, goal, alpha)`` tickets
are right, the largest count that a version exactly at the goal undershoots with
probability at most ``alpha``. Each ticket is an independent draw from the drifted
distribution and the version answers deterministically, so the count of right answers is
Binomial(n, p) for the version's true accuracy p.

>>> threshold(400, 0.96, 1e-3)
371
>>> v = verdict(correct=380, n=400, goal=0.96, alpha=1e-3)
>>> v.passed, round(v.lower_bound, 3)
(True, 0.907)
>>> round(false_pass(400, 0.96, 1e-3, true_accuracy=0.90), 3)
0.036
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import beta, binom


def threshold(n: int, goal: float, alpha: float) -> int:
    """The least count of right answers that passes: ``P(Bin(n, goal) < c) <= alpha``."""
    if n <= 0 or not 0.0 < goal < 1.0 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n > 0 and goal, alpha in (0, 1); got {n}, {goal}, {alpha}")
    c = int(binom.ppf(alpha, n, goal))
    # ppf gives the least c with cdf(c) >= alpha; step to the largest c with cdf(c - 1) <= alpha.
    while c + 1 <= n and binom.cdf(c, n, goal) <= alpha:
        c += 1
    while c > 0 and binom.cdf(c - 1, n, goal) > alpha:
        c -= 1
    return c


def false_fail(n: int, goal: float, alpha: float) -> float:
    """Chance that a version exactly at ``goal`` fails (at most ``alpha``)."""
    return float(binom.cdf(threshold(n, goal, alpha) - 1, n, goal))


def false_pass(n: int, goal: float, alpha: float, *, true_accuracy: float) -> float:
    """Chance that a version whose true accuracy is ``true_accuracy`` passes."""
    return float(binom.sf(threshold(n, goal, alpha) - 1, n, true_accuracy))


def lower_bound(correct: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower confidence bound on the accuracy, level ``1 - alpha``."""
    return 0.0 if correct == 0 else float(beta.ppf(alpha, correct, n - correct + 1))


@dataclass(frozen=True)
class Verdict:
    correct: int
    n: int
    goal: float
    alpha: float
    threshold: int
    passed: bool
    accuracy: float
    lower_bound: float
    false_fail: float
    false_pass_at_90: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.correct}/{self.n} right ({self.accuracy:.1%}; "
            f"{1 - self.alpha:.1%} lower bound {self.lower_bound:.1%}); pass needs "
            f">= {self.threshold} (goal {self.goal:.0%}): {'pass' if self.passed else 'FAIL'}"
        )


def verdict(*, correct: int, n: int, goal: float, alpha: float) -> Verdict:
    c = threshold(n, goal, alpha)
    return Verdict(
        correct=correct,
        n=n,
        goal=goal,
        alpha=alpha,
        threshold=c,
        passed=correct >= c,
        accuracy=correct / n,
        lower_bound=lower_bound(correct, n, alpha),
        false_fail=false_fail(n, goal, alpha),
        false_pass_at_90=false_pass(n, goal, alpha, true_accuracy=0.90),
    )
