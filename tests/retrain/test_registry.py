"""The registry: atomic versions, never-reused numbers, metadata, out of disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrain.errors import AdapterConfigError, OutOfDisk, RegistryError, UnknownAdapter
from retrain.registry import META_FILE, Registry, VersionMetadata


def fake_adapter(d: Path, rank: int = 8, **extra: object) -> None:
    conf = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 16,
        "target_modules": ["q_proj"],
        "use_dora": False,
        "modules_to_save": None,
        **extra,
    }
    (d / "adapter_config.json").write_text(json.dumps(conf))
    (d / "adapter_model.safetensors").write_bytes(b"weights")


def meta(adapter: str = "support") -> VersionMetadata:
    return VersionMetadata(
        adapter=adapter, version=1, lora_name="x--v1", base_model="/m", reason="test"
    )


def test_commit_is_atomic_and_numbers_increase(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with reg.stage("support") as st:
        fake_adapter(st)
        assert reg.versions("support") == []  # staged is invisible
        m1 = reg.commit(st, meta())
    assert m1.version == 1 and m1.lora_name == "support--v1"
    assert not st.exists()
    with reg.stage("support") as st:
        fake_adapter(st)
        m2 = reg.commit(st, meta(), reserved=[5, 3])  # state store knows 5: never reuse
    assert m2.version == 6
    assert reg.versions("support") == [1, 6]
    assert json.loads((tmp_path / "support" / "6" / META_FILE).read_text())["version"] == 6
    assert [m.version for m in reg.entries()] == [1, 6]
    assert reg.adapters() == ["support"]


def test_failure_inside_stage_leaves_nothing(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with pytest.raises(RuntimeError), reg.stage("support") as st:
        fake_adapter(st)
        raise RuntimeError("training crashed")
    assert list((tmp_path / "support").iterdir()) == []


def test_commit_refuses_incomplete_or_unservable(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with reg.stage("support") as st:
        (st / "adapter_config.json").write_text("{}")
        with pytest.raises(RegistryError, match="lacks adapter_model"):
            reg.commit(st, meta())
    with reg.stage("support") as st:
        fake_adapter(st, use_dora=True)
        with pytest.raises(AdapterConfigError, match="DoRA"):
            reg.commit(st, meta())
    with reg.stage("support") as st:
        fake_adapter(st, modules_to_save=["lm_head"])
        with pytest.raises(AdapterConfigError, match="modules_to_save"):
            reg.commit(st, meta())
    assert reg.versions("support") == []
    assert list((tmp_path / "support").iterdir()) == []


def test_update_and_read(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with reg.stage("support") as st:
        fake_adapter(st)
        reg.commit(st, meta())
    reg.update("support", 1, status="rejected", decision=["worse"])
    m = reg.read("support", 1)
    assert m.status == "rejected" and m.decision == ["worse"]
    with pytest.raises(UnknownAdapter):
        reg.read("support", 9)
    with pytest.raises(UnknownAdapter):
        reg.adapter_dir("Bad Name")


def test_out_of_disk_is_clear_and_leaves_nothing(tiny_disk: Path) -> None:
    reg = Registry(tiny_disk)
    with pytest.raises(OutOfDisk, match="out of disk"), reg.stage("support") as st:
        fake_adapter(st)
        big = meta().model_copy(update={"training": {"curve": "x" * 200_000}})
        reg.commit(st, big)
    assert reg.versions("support") == []
    assert list((tiny_disk / "support").iterdir()) == []
