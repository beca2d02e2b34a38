"""The one LoRA-directory check (``driftgate.core.lora_check``) and the retrain job's use of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftgate.core.errors import InvalidRequest
from driftgate.core.lora_check import (
    AdapterPathNotAllowed,
    UnservableAdapter,
    check_lora_dir,
    confine_path,
)
from retrain.adapter_files import check_servable
from retrain.errors import AdapterConfigError
from tests.gateway.conftest import make_peft_dir

BASE = ["SmolLM2-135M-Instruct"]


def test_a_servable_directory_and_its_shape(tmp_path: Path) -> None:
    ok = make_peft_dir(tmp_path, "ok")
    info = check_lora_dir(ok, max_rank=16, base_names=BASE)
    assert info.rank == 8 and info.alpha == 16 and info.path == ok
    assert info.target_modules == ("q_proj", "v_proj")
    assert info.base_model == "/models/SmolLM2-135M-Instruct"
    # No engine limit and no base names given: those two rules are skipped.
    assert check_lora_dir(make_peft_dir(tmp_path, "big", r=64)).rank == 64
    other = make_peft_dir(tmp_path, "other", base_model_name_or_path="meta-llama/Llama-3-8B")
    assert check_lora_dir(other).base_model == "meta-llama/Llama-3-8B"
    one = make_peft_dir(tmp_path, "one", target_modules="all-linear")
    assert check_lora_dir(one).target_modules == ("all-linear",)
    assert json.loads((Path(ok) / "adapter_config.json").read_text())["r"] == 8


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"r": 32}, "exceeds"),
        ({"r": 0}, "valid rank"),
        ({"r": True}, "valid rank"),
        ({"r": "8"}, "valid rank"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"use_dora": True}, "DoRA"),
        ({"base_model_name_or_path": "meta-llama/Llama-3-8B"}, "trained on"),
        ({"peft_type": "IA3"}, "not supported"),
        ({"peft_type": None}, "not supported"),  # a missing type is not taken for LoRA
        ({"peft_type": "lora"}, "not supported"),
    ],
)
def test_config_refusals(tmp_path: Path, config: dict[str, Any], needle: str) -> None:
    path = make_peft_dir(tmp_path, "a", **config)
    with pytest.raises(UnservableAdapter, match=needle) as e:
        check_lora_dir(path, max_rank=16, base_names=BASE)
    assert isinstance(e.value, InvalidRequest) and e.value.status_code == 400
    assert e.value.param == "path" and e.value.code == "invalid_adapter"


def test_directory_refusals(tmp_path: Path) -> None:
    (tmp_path / "noconf").mkdir()
    broken = Path(make_peft_dir(tmp_path, "broken"))
    (broken / "adapter_config.json").write_text("{nope")
    listed = Path(make_peft_dir(tmp_path, "listed"))
    (listed / "adapter_config.json").write_text("[]")
    unweighted = Path(make_peft_dir(tmp_path, "unweighted"))
    (unweighted / "adapter_model.safetensors").unlink()
    binary = Path(make_peft_dir(tmp_path, "binary"))
    (binary / "adapter_model.safetensors").rename(binary / "adapter_model.bin")
    assert check_lora_dir(binary).rank == 8
    for path, needle in [
        (str(tmp_path / "noconf"), "adapter_config.json"),
        (str(tmp_path / "missing"), "does not exist"),
        ("relative/path", "absolute"),
        (str(broken), "unreadable"),
        (str(listed), "JSON object"),
        (str(unweighted), "no adapter_model"),
    ]:
        with pytest.raises(UnservableAdapter, match=needle):
            check_lora_dir(path, max_rank=16, base_names=["x"])


def test_the_retrain_job_records_the_shape_and_raises_its_own_error(tmp_path: Path) -> None:
    ok = Path(make_peft_dir(tmp_path, "ok", target_modules=["v_proj", "q_proj"]))
    assert check_servable(ok) == {"rank": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}
    with pytest.raises(AdapterConfigError, match="exceeds") as e:
        check_servable(ok, max_rank=4)
    assert e.value.code == "adapter_config_invalid" and str(ok) in str(e.value)
    dora = Path(make_peft_dir(tmp_path, "dora", use_dora=True))
    with pytest.raises(AdapterConfigError, match="DoRA"):
        check_servable(dora)


def test_a_path_is_confined_to_the_adapter_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "registry", tmp_path / "elsewhere"
    inside = Path(make_peft_dir(root, "support/3"))
    foreign = Path(make_peft_dir(outside, "evil"))
    assert confine_path(inside, [root]) == inside.resolve()
    # through a link inside the root, and climbing out with "..": both resolve outside
    (root / "link").symlink_to(foreign, target_is_directory=True)
    for path in (root / "link", f"{root}/support/../../elsewhere/evil", foreign):
        with pytest.raises(AdapterPathNotAllowed) as e:
            confine_path(path, [root])
        assert e.value.status_code == 400 and e.value.param == "path"
        assert e.value.code == "adapter_path_not_allowed"
        if path != foreign:  # the message does not tell where a link leads
            assert str(foreign) not in str(e.value)
    # a link into the root is fine: the resolved target is what counts (and is returned)
    (outside / "ok").symlink_to(inside, target_is_directory=True)
    assert confine_path(outside / "ok", [outside / "nowhere", root]) == inside.resolve()
    with pytest.raises(AdapterPathNotAllowed):
        confine_path(root, [root])  # the root itself is no adapter
    with pytest.raises(UnservableAdapter, match="absolute"):
        confine_path("registry/support/3", [root])
