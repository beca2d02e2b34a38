"""Time-ordered ids: unique, fixed width, and later ids sort after earlier ones."""

from __future__ import annotations

import time

from driftgate.core.events import RequestEvent
from driftgate.core.ids import time_ordered_id


def test_ids_are_unique_hex_of_fixed_width() -> None:
    ids = [time_ordered_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_an_id_made_a_millisecond_later_sorts_after() -> None:
    earlier = [time_ordered_id() for _ in range(50)]
    time.sleep(0.002)
    later = [time_ordered_id() for _ in range(50)]
    assert max(earlier) < min(later)


def test_events_get_time_ordered_ids_by_default() -> None:
    first = RequestEvent(request_id="r", tenant="t").event_id
    time.sleep(0.002)
    assert RequestEvent(request_id="r", tenant="t").event_id > first
