"""The golden set keeps conversations: earlier turns survive registering and loading, and a
single-turn set keeps the bytes it always had."""

from __future__ import annotations

from pathlib import Path

from driftgate.core.events import RecordedMessage
from retrain.adapter_task import GOLDEN_FILE, load_golden, register_golden
from retrain.examples import ChatExample
from retrain.registry import Registry

TURNS = (
    RecordedMessage(role="user", content="Where is my parcel?"),
    RecordedMessage(role="assistant", content="Q-SHP"),
)


def test_golden_history_round_trips(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    golden = [
        ChatExample("Following up: my invoice is wrong.", "Q-BIL", system="Route.", history=TURNS),
        ChatExample("My password fails.", "Q-ACC", system="Route."),
        ChatExample(
            "Weather in Paris?",
            '{"tool_calls": [{"name": "w", "arguments": "{}"}]}',
            system="Route.",
            system_name="router",
            prompt_name="alice",
            tools_json='[{"function":{"name":"w"},"type":"function"}]',
        ),
        ChatExample(
            "My printer jams.",
            '{"queue": "Q-HW"}',
            response_format_json='{"type":"json_object"}',
            stop=("\n\n", "END"),
        ),
    ]
    register_golden(registry, "support", golden)
    assert load_golden(registry, "support") == golden


def test_single_turn_golden_lines_have_no_history_key(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    register_golden(registry, "support", [ChatExample("My password fails.", "Q-ACC")])
    line = (registry.adapter_dir("support") / GOLDEN_FILE).read_text()
    assert line == '{"completion": "Q-ACC", "prompt": "My password fails.", "system": null}\n'
