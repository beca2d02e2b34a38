"""Client-side traffic for the demo: tickets through the gateway with the `openai` SDK.

Every answer is scored against the ticket's true queue (the task metric). A
share of answers gets feedback the way real users give it: late, noisy, and
sometimes with the right answer as a correction.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from openai import OpenAI, OpenAIError

from driftgate.demo.tickets import Ticket, extract_queue

VERSION_HEADER = "x-driftgate-version"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request as the client saw it."""

    ts: float
    phase: str
    ticket: Ticket
    answer: str
    correct: bool
    request_id: str
    #: ``support@3`` as the gateway reported it (header), or "" if not reported.
    served_by: str
    ok: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class FeedbackPolicy:
    """How users react. ``share`` of answers get feedback after ``delay_s``; the
    thumbs are wrong with probability ``noise``; ``correction_share`` of
    thumbs-down carry the right queue as a correction."""

    share: float = 0.6
    noise: float = 0.05
    correction_share: float = 0.5
    delay_s: float = 0.5


class FeedbackSender:
    """Sends feedback in the background after a delay, as users do."""

    def __init__(self, gateway_url: str, api_key: str, policy: FeedbackPolicy, seed: int) -> None:
        self.policy = policy
        self._rng = random.Random(seed)
        self._client = httpx.Client(
            base_url=gateway_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0
        )
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="feedback")
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.negative = 0

    def maybe_send(self, outcome: Outcome) -> None:
        if not outcome.ok:
            return
        with self._lock:
            if self._rng.random() >= self.policy.share:
                return
            good = outcome.correct != (self._rng.random() < self.policy.noise)
            correct_it = not good and self._rng.random() < self.policy.correction_share
        body: dict[str, object] = {"request_id": outcome.request_id, "score": 1.0 if good else 0.0}
        if correct_it:
            body["correction"] = outcome.ticket.queue
        self._pool.submit(self._send, body)

    def _send(self, body: dict[str, object]) -> None:
        time.sleep(self.policy.delay_s)
        try:
            r = self._client.post("/v1/feedback", json=body)
            ok = r.status_code == 202
        except httpx.HTTPError:
            ok = False
        with self._lock:
            if ok:
                self.sent += 1
                self.negative += body["score"] == 0.0
            else:
                self.failed += 1

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


def route_ticket(api: OpenAI, model: str, ticket: Ticket, phase: str) -> Outcome:
    """Ask the gateway to route one ticket; never raises (failures are outcomes)."""
    ts = time.time()
    try:
        raw = api.chat.completions.with_raw_response.create(
            model=model,
            messages=ticket.messages(),  # type: ignore[arg-type]
            max_tokens=8,
            temperature=0,
        )
        completion = raw.parse()
    except OpenAIError as exc:
        return Outcome(ts, phase, ticket, "", False, "", "", ok=False, error=str(exc)[:200])
    answer = completion.choices[0].message.content or ""
    return Outcome(
        ts=ts,
        phase=phase,
        ticket=ticket,
        answer=answer,
        correct=extract_queue(answer) == ticket.queue,
        request_id=completion.id,
        served_by=raw.headers.get(VERSION_HEADER, ""),
        ok=True,
    )


def run_traffic(
    api: OpenAI,
    model: str,
    tickets: Sequence[Ticket],
    phase: str,
    *,
    concurrency: int,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Send ``tickets`` with ``concurrency`` clients; outcomes in completion order."""
    results: list[Outcome] = []
    lock = threading.Lock()

    def one(ticket: Ticket) -> None:
        outcome = route_ticket(api, model, ticket, phase)
        with lock:
            results.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"traffic-{phase}") as pool:
        list(pool.map(one, tickets))
    return results


def accuracy(outcomes: Sequence[Outcome]) -> float:
    done = [o for o in outcomes if o.ok]
    return sum(o.correct for o in done) / len(done) if done else 0.0
