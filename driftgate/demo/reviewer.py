"""The demo's reviewer: a person working through the review queue, simulated.

It polls the demo tenant's review queue through the gateway (``GET /v1/review/items``,
``POST /v1/review/items/{id}``, the tenant's own key), looks each item's request up among
the demo's outcomes, and answers from the ticket's ground truth with the same noise as the
demo's users (``feedback_noise``): the served answer approved (its queue code as the label)
when judged right, else a correction with the true queue code. It stops at ``budget``
labels whatever the queue offers.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import httpx

from driftgate.demo.tickets import extract_queue
from driftgate.demo.traffic import Outcome

#: Items asked for per poll (the drift service queues a round of about ten at a time).
POLL_LIMIT = 20


def review_answer(outcome: Outcome, noise: float, rng: random.Random) -> dict[str, str]:
    """A reviewer's body for one item: ``{"label": served}`` when judged right, else
    ``{"correction": true queue}``; the judgement is wrong with probability ``noise``.

    >>> from driftgate.demo.tickets import TicketGenerator
    >>> t = TicketGenerator(seed=1).batch(1, shifted=False)[0]
    >>> o = Outcome(0.0, "shifted", t, t.queue, True, "r1", "support@1", ok=True)
    >>> review_answer(o, 0.0, random.Random(0)) == {"label": t.queue}
    True
    """
    served = extract_queue(outcome.answer)
    judged_right = outcome.correct != (rng.random() < noise)
    if judged_right and served is not None:
        return {"label": served}
    return {"correction": outcome.ticket.queue}


@dataclass
class ReviewTally:
    """What the reviewer did: labels given (approvals and corrections), items it could not
    match to a request of the demo, calls refused."""

    approved: int = 0
    corrected: int = 0
    unknown: int = 0
    failed: int = 0

    @property
    def labelled(self) -> int:
        return self.approved + self.corrected

    def as_dict(self) -> dict[str, int]:
        return {
            "labelled": self.labelled,
            "approved": self.approved,
            "corrected": self.corrected,
            "unknown": self.unknown,
            "failed": self.failed,
        }


class SimulatedReviewer:
    """Answers the queue in a background thread: :meth:`start`, :meth:`remember` each
    outcome as it happens, :meth:`close` at the end. ``label_delay_s``: a person's time
    per item, so later rounds pick among fresher traffic."""

    def __init__(
        self,
        gateway_url: str,
        api_key: str,
        adapter: str,
        *,
        budget: int,
        noise: float,
        seed: int,
        poll_s: float = 1.0,
        label_delay_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.adapter = adapter
        self.budget = budget
        self.noise = noise
        self.poll_s = poll_s
        self.label_delay_s = label_delay_s
        self.tally = ReviewTally()
        self._rng = random.Random(seed)
        self._outcomes: dict[str, Outcome] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(
            base_url=gateway_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=30.0,
            transport=transport,
        )

    def remember(self, outcome: Outcome) -> None:
        """An outcome the reviewer may be asked about (its ticket is the ground truth)."""
        if outcome.ok and outcome.request_id:
            with self._lock:
                self._outcomes[outcome.request_id] = outcome

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-reviewer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set() and self.tally.labelled < self.budget:
            self.review_once()
            self._stop.wait(self.poll_s)

    def review_once(self) -> int:
        """One poll: answer the open items (within the budget); how many were labelled."""
        try:
            r = self._client.get(
                "/v1/review/items", params={"adapter": self.adapter, "limit": POLL_LIMIT}
            )
        except httpx.HTTPError:
            self.tally.failed += 1
            return 0
        if r.status_code != 200:  # 429 (shared with feedback's rate limit), 503: poll again
            self.tally.failed += 1
            return 0
        done = 0
        for item in r.json()["data"]:
            if self.tally.labelled >= self.budget or self._stop.is_set():
                break
            with self._lock:
                outcome = self._outcomes.get(str(item["request_id"]))
            if outcome is None:
                self.tally.unknown += 1
                continue
            body = review_answer(outcome, self.noise, self._rng)
            if self._label(int(item["id"]), body):
                done += 1
                if "label" in body:
                    self.tally.approved += 1
                else:
                    self.tally.corrected += 1
            self._stop.wait(self.label_delay_s)
        return done

    def _label(self, item_id: int, body: dict[str, str]) -> bool:
        try:
            r = self._client.post(f"/v1/review/items/{item_id}", json=body)
        except httpx.HTTPError:
            self.tally.failed += 1
            return False
        if r.status_code != 202:
            self.tally.failed += 1
            return False
        return True
