"""The recorded served window: tickets as adapter v1 answered them through vLLM.

One gzipped JSON file holds, per request in the order the app sent it, the ticket (last
user message, true queue, the earlier turn of a follow-up), v1's greedy answer and its
answer confidence as the gateway measures it (``gateway.answer_confidence``: mean token
logprob, first-token margin). Three stretches: ``stable`` (original traffic), ``drifted``
(after the shift) and ``heldout`` (drifted tickets never sent as traffic nor labelled:
the recovery set, with v1's answers for reference).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from driftgate.demo.tickets import Ticket, extract_queue

DATA_DIR = Path(__file__).parent / "data"
WINDOW_FILE = DATA_DIR / "served-window.json.gz"
STRETCHES = ("stable", "drifted", "heldout")


@dataclass(frozen=True, slots=True)
class ServedRow:
    """One recorded request (``earlier_*``: the first turn of a follow-up, else empty)."""

    text: str
    queue: str
    shifted: bool
    earlier_text: str
    earlier_queue: str
    answer: str
    mean_logprob: float | None
    first_token_margin: float | None

    @property
    def correct(self) -> bool:
        return extract_queue(self.answer) == self.queue

    def ticket(self) -> Ticket:
        earlier = (
            Ticket(self.earlier_text, self.earlier_queue, shifted=False)
            if self.earlier_text
            else None
        )
        return Ticket(self.text, self.queue, self.shifted, earlier=earlier)

    @classmethod
    def of(
        cls, ticket: Ticket, answer: str, mean_lp: float | None, margin: float | None
    ) -> ServedRow:
        e = ticket.earlier
        return cls(
            text=ticket.text,
            queue=ticket.queue,
            shifted=ticket.shifted,
            earlier_text=e.text if e else "",
            earlier_queue=e.queue if e else "",
            answer=answer,
            mean_logprob=mean_lp,
            first_token_margin=margin,
        )


@dataclass(frozen=True, slots=True)
class ServedWindow:
    meta: dict[str, Any]
    stretches: dict[str, list[ServedRow]]

    def rows(self, stretch: str) -> list[ServedRow]:
        return self.stretches[stretch]


def save_window(window: ServedWindow, path: Path = WINDOW_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": window.meta,
        "fields": [f.name for f in fields(ServedRow)],
        "stretches": {
            name: [list(asdict(r).values()) for r in rows]
            for name, rows in window.stretches.items()
        },
    }
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(doc, fh, separators=(",", ":"))


def load_window(path: Path = WINDOW_FILE) -> ServedWindow:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    fields = doc["fields"]
    stretches = {
        name: [ServedRow(**dict(zip(fields, row, strict=True))) for row in rows]
        for name, rows in doc["stretches"].items()
    }
    return ServedWindow(doc["meta"], stretches)
