"""A rise in tool calls is not a rise in empty outputs (issue "Real chat traffic", part 3).

An answer that is a tool call has no text content; the gateway records its calls as the
answer (``driftgate.core.recorded_answer.answer_text``) and the drift features count it as output,
with its own ``finish_reason``. Every numeric signal repeats one fixed sequence in the
reference and the window, so only the tool-call share changes: the outcome is fixed, and
the test fails only if tool calls read as empty outputs (or alarm another signal).
"""

from __future__ import annotations

from collections.abc import Callable

from drift.batch import request_rows, signal_columns
from drift.features import request_features
from drift.monitor import Alarm, MonitorConfig
from drift.versions import DriftMonitor
from driftgate.core.events import RequestEvent
from driftgate.core.recorded_answer import answer_text

CFG = MonitorConfig(reference_size=200, window_size=200, test_every=50)
LATENCIES = [80.0 + 7.0 * (i % 13) for i in range(26)]
TOOL_ANSWER = answer_text("", [("lookup_order", '{"order": 12345}')])


def traffic(
    make: Callable[..., RequestEvent], n: int, *, tool_share: float, **tool_fields: object
) -> list[RequestEvent]:
    """``n`` answers, every ``1 / tool_share``-th a tool call; the rest plain text."""
    every = round(1 / tool_share) if tool_share else 0
    events = []
    for i in range(n):
        base = {"latency_ms": LATENCIES[i % len(LATENCIES)], "completion_tokens": 6 + i % 3}
        if every and i % every == 0:
            events.append(make(**base, **tool_fields))
        else:
            events.append(make(**base))
    return events


def run(make: Callable[..., RequestEvent], **tool_fields: object) -> tuple[list[Alarm], float]:
    """Alarms of a version whose traffic turns half tool calls, and its empty-output rate."""
    monitor = DriftMonitor(CFG)
    alarms: list[Alarm] = []
    window = traffic(make, 600, tool_share=0.5, **tool_fields)
    for event in traffic(make, 200, tool_share=0.0) + window:
        alarms += monitor.observe("support", 1, request_features(event).signals())
    # The batch path (what the service runs) computes the same empty flags.
    _, keys, empties, refusals = request_rows(window, lambda _a: "keep")
    columns = signal_columns(window, keys, empties, refusals)[("support", 1)]
    empty_rate = sum(float(v) for v in columns["empty_output"]) / len(window)
    return alarms, empty_rate


def test_half_the_answers_becoming_tool_calls_confirms_no_drift(
    request_factory: Callable[..., RequestEvent],
) -> None:
    # as the gateway records them (the calls as text), with no text (text policy "off"),
    # and as a gateway before this change sent them (empty text)
    for text in (TOOL_ANSWER, None, ""):
        alarms, empty_rate = run(request_factory, completion_text=text, finish_reason="tool_calls")
        assert empty_rate == 0.0
        assert [a for a in alarms if a.confirmed] == [], alarms
        # the share of finish reasons did move, and is shown (never confirmed alone)
        assert {a.signal for a in alarms} <= {"finish_reason"}


def test_the_same_share_of_truly_empty_answers_is_confirmed_drift(
    request_factory: Callable[..., RequestEvent],
) -> None:
    """The control: the detectors see this window when the answers are really empty."""
    alarms, empty_rate = run(request_factory, completion_text="", finish_reason="stop")
    assert empty_rate == 0.5
    assert "empty_output" in {a.signal for a in alarms if a.confirmed}
