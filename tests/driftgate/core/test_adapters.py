"""Adapter names are matched whole: a trailing newline is not part of a valid name."""

from __future__ import annotations

import pytest

from driftgate.core.adapters import (
    AdapterNameError,
    is_valid_adapter_name,
    lora_name,
    parse_lora_name,
    parse_model,
)


@pytest.mark.parametrize("tail", ["\n", "\r\n", " ", "\x00", "\n\n"])
def test_a_name_with_trailing_junk_is_refused_everywhere(tail: str) -> None:
    assert is_valid_adapter_name("support")
    assert not is_valid_adapter_name("support" + tail)
    with pytest.raises(AdapterNameError):
        lora_name("support" + tail, 3)
    assert parse_lora_name("support--v3") == ("support", 3)
    assert parse_lora_name("support--v3" + tail) is None
    assert parse_model("support@3", "base").version == 3
    for model in ("support" + tail, "support@3" + tail):
        with pytest.raises(AdapterNameError):
            parse_model(model, "base")
