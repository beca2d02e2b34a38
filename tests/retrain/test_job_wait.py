"""The retrain job waits for labelled examples of the drifted traffic before training."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from driftgate.core.events import FeedbackEvent
from retrain.dataset import TrafficRecord
from retrain.job import usable_in_window, wait_for_drift_data
from retrain.settings import RetrainSettings


def record(i: int, ts: float, **feedback: Any) -> TrafficRecord:
    fb = (FeedbackEvent(request_id=f"r{i}", tenant="t", ts=ts + 1, **feedback),) if feedback else ()
    return TrafficRecord(
        request_id=f"r{i}", ts=ts, prompt_text="p", completion_text="c", tenant="t", feedback=fb
    )


def test_usable_counts_approved_and_corrected_in_the_window_only() -> None:
    records = [
        record(0, 50.0, score=1.0),  # before the window
        record(1, 150.0, score=1.0),  # approved
        record(2, 160.0, score=0.0, correction="Q-NOVA"),  # corrected
        record(3, 170.0, score=0.0),  # negative, nothing to learn
        record(4, 180.0),  # unrated
        record(5, 190.0, label="Q-NOVA"),  # a reviewer's label: the target
    ]
    assert usable_in_window(records, since=100.0) == 3
    assert usable_in_window(records, since=100.0, label_is_target=False) == 2


def test_a_review_label_given_in_the_window_counts_for_an_earlier_request() -> None:
    """Detection lags the shift: the review queue picks drifted requests from before the
    first alarm; their labels, given since, are the window's labels. Older labels are not."""
    reviewed = [
        replace(record(0, 50.0, label="Q-NOVA"), feedback_source="review"),  # label at 51
        replace(record(1, 60.0, correction="Q-NOVA"), feedback_source="review"),
        record(2, 52.0, score=1.0),  # a client's approval before the window
    ]
    assert usable_in_window(reviewed, since=55.0) == 1
    assert usable_in_window(reviewed, since=40.0) == 3


class _Ctx:
    """The two parts of a JobContext the wait uses; traffic grows at every read."""

    def __init__(self, settings: RetrainSettings) -> None:
        self.settings = settings
        self.reads = 0

    def source(self, _adapter: str, tenants: Collection[str]) -> list[TrafficRecord]:
        assert set(tenants) == {"t"}  # the opted-in tenants reach the source
        self.reads += 1
        return [record(i, 200.0 + i, score=1.0) for i in range(5 * self.reads)]


def test_waits_until_enough_drifted_examples_arrived() -> None:
    ctx = _Ctx(RetrainSettings(min_drift_examples=12, data_wait_s=30))
    records = wait_for_drift_data(ctx, "support", 100.0, ["t"], poll_s=0.0)  # type: ignore[arg-type]
    assert ctx.reads == 3 and len(records) == 15


def test_gives_up_waiting_after_the_deadline_and_trains_on_what_is_there() -> None:
    ctx = _Ctx(RetrainSettings(min_drift_examples=10_000, data_wait_s=0.05))
    records = wait_for_drift_data(ctx, "support", 100.0, ["t"], poll_s=0.01)  # type: ignore[arg-type]
    assert records and ctx.reads >= 2


def test_no_wait_without_a_drift_window() -> None:
    ctx = _Ctx(RetrainSettings(min_drift_examples=50, data_wait_s=30))
    assert len(wait_for_drift_data(ctx, "support", None, ["t"], poll_s=0.0)) == 5  # type: ignore[arg-type]
    assert ctx.reads == 1
