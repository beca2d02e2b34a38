"""What a run records of its examples as trained equals what training rendered."""

from __future__ import annotations

from pathlib import Path

from driftgate.core.events import RecordedMessage
from retrain.encoding import render
from retrain.examples import ChatExample
from retrain.trained_sample import rendered_samples

TURNS = (
    RecordedMessage(role="user", content="Where is my parcel?"),
    RecordedMessage(role="assistant", content="Q-SHP"),
)


def test_the_conversation_comes_first_and_is_rendered_as_trained(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)
    single = ChatExample("My password fails.", "Q-ACC", system="Route.", request_id="a")
    convo = ChatExample(
        "Following up: my invoice.", "Q-BIL", system="Route.", history=TURNS, request_id="b"
    )
    samples = rendered_samples(tok, [single, single, convo])
    assert [s["request_id"] for s in samples] == ["b", "a"]
    first = samples[0]
    assert first["messages"] == convo.messages(with_completion=False)
    assert (first["rendered_prompt"], first["rendered_target"]) == render(tok, convo)
    assert "Where is my parcel?" in first["rendered_prompt"] and first["target"] == "Q-BIL"
