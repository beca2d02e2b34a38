"""The ``driftgate`` command: ``model prepare``, ``engine``, ``up``, ``rollout``, ``review``,
``demo``.

Errors the user can fix end the command with exit status 1 and one line on
stderr (``driftgate: error: ...``); Ctrl-C and SIGTERM stop every process the
command started.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from driftgate.core import paths
from driftgate.core.errors import CliError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _fail(message: str) -> int:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"driftgate: error: {first}", file=sys.stderr, flush=True)
    rest = message.strip().splitlines()[1:]
    if rest:  # e.g. a process log tail: useful, but after the one-line summary
        print("\n".join(rest), file=sys.stderr, flush=True)
    return EXIT_ERROR


# --- model ---------------------------------------------------------------------------------


def cmd_model_prepare(args: argparse.Namespace) -> int:
    from driftgate.model import prepare_model

    prepare_model(
        Path(args.dir) if args.dir else None,
        source=Path(args.source) if args.source else None,
        force=args.force,
    )
    return 0


# --- engine --------------------------------------------------------------------------------


def _engine_settings(args: argparse.Namespace) -> object:
    from driftgate.settings import EngineSettings

    updates: dict[str, object] = {}
    for key in ("host", "port", "model_dir", "served_model_name", "max_loras"):
        value = getattr(args, key, None)
        if value is not None:
            updates[key] = Path(value) if key == "model_dir" else value
    return EngineSettings(**updates)  # type: ignore[arg-type]


def _require_model(model_dir: Path, remedy: str = "`driftgate model prepare`") -> None:
    from driftgate.model import ModelError, validate_model_dir

    try:
        validate_model_dir(model_dir)
    except ModelError as exc:
        raise CliError(f"{exc}; run {remedy} first") from exc


def cmd_engine(args: argparse.Namespace) -> int:
    from driftgate.engine import EngineProcess, EngineSettings
    from driftgate.stack import exit_on_signals

    settings = _engine_settings(args)
    assert isinstance(settings, EngineSettings)
    _require_model(settings.model_dir)
    log_path = Path(args.log_file) if args.log_file else paths.home() / "logs" / "engine.log"
    print(f"starting vLLM on {settings.base_url} (log: {log_path})", file=sys.stderr, flush=True)
    with exit_on_signals(), EngineProcess(settings, log_path=log_path) as engine:
        print(
            f"engine ready at {engine.base_url}/v1 serving {settings.served_model_name} "
            f"after {engine.ready_after_s:.1f} s; Ctrl-C to stop",
            flush=True,
        )
        code = engine.wait_exit()
    raise CliError(f"the engine exited with code {code}; see {log_path}")


# --- up ------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from driftgate.settings import EngineSettings, StackSettings
    from driftgate.stack import Stack, exit_on_signals, stack_services, tenant_key

    updates: dict[str, object] = {}
    for key in ("engine_port", "gateway_port", "drift_port"):
        if getattr(args, key) is not None:
            updates[key] = getattr(args, key)
    if args.upstream:
        updates.update(start_engine=False, upstreams=args.upstream)
    settings = StackSettings(**updates)  # type: ignore[arg-type]
    engine = EngineSettings()
    if settings.start_engine:
        _require_model(engine.model_dir)
    config = stack_services(settings, engine)
    with exit_on_signals(), Stack(config.services, log_dir=config.log_dir, progress=True) as stack:
        tenant, api_key = tenant_key(config.urls.gateway, config.admin_key, args.tenant)
        print(
            "\n".join(
                [
                    "driftgate is up:",
                    f"  OpenAI API (gateway): {config.urls.gateway}/v1",
                    f"  drift service:        {config.urls.drift}",
                    f"  vLLM engine(s):       {', '.join(config.urls.engine)}",
                    f"  logs:                 {config.log_dir}",
                    f"  admin key:            {config.admin_key}",
                    f"  tenant {tenant!r} API key: {api_key}",
                    "Ctrl-C to stop.",
                ]
            ),
            flush=True,
        )
        name = stack.wait()
    raise CliError(f"{name} exited unexpectedly; see {config.log_dir / (name + '.log')}")


# --- demo ----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from driftgate.demo import run_demo
    from driftgate.settings import EngineSettings

    _require_model(EngineSettings().model_dir, remedy="`make setup`")
    return run_demo(args)


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftgate",
        description="Multi-LoRA gateway with drift detection, retrain and hot swap.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    model = sub.add_parser("model", help="manage the base model")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    prep = model_sub.add_parser(
        "prepare", help="download and convert SmolLM2-135M-Instruct (or copy --source)"
    )
    prep.add_argument("--source", metavar="DIR", help="use a local Hugging Face model directory")
    prep.add_argument("--force", action="store_true", help="redo even if already prepared")
    prep.add_argument(
        "--dir", metavar="DIR", help="target directory (default: %(default)s)", default=None
    )
    prep.set_defaults(func=cmd_model_prepare)

    eng = sub.add_parser("engine", help="run the vLLM engine in the foreground")
    eng.add_argument("--host")
    eng.add_argument("--port", type=int)
    eng.add_argument("--model-dir", dest="model_dir")
    eng.add_argument("--served-model-name", dest="served_model_name")
    eng.add_argument("--max-loras", dest="max_loras", type=int)
    eng.add_argument("--log-file", dest="log_file")
    eng.set_defaults(func=cmd_engine)

    up = sub.add_parser("up", help="start engine, drift service and gateway")
    up.add_argument("--engine-port", dest="engine_port", type=int)
    up.add_argument("--gateway-port", dest="gateway_port", type=int)
    up.add_argument("--drift-port", dest="drift_port", type=int)
    up.add_argument(
        "--upstream",
        action="append",
        metavar="URL",
        help="use a running vLLM at URL instead of starting one (repeatable)",
    )
    up.add_argument("--tenant", default="demo", help="name of the tenant to create")
    up.set_defaults(func=cmd_up)

    from rollout.cli import register as register_rollout

    register_rollout(sub)

    from driftgate.review_cli import register as register_review

    register_review(sub)

    demo = sub.add_parser("demo", help="run the closed-loop demo: drift caught and fixed")
    demo.add_argument("--quick", action="store_true", help="fewer requests (as in CI)")
    demo.add_argument(
        "--prepare",
        action="store_true",
        help="only train and cache adapter v1 (part of `make setup`), then exit",
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def _settings_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or exc.title
        parts.append(f"{loc}: {err.get('msg', 'invalid value')} (got {err.get('input')!r})")
    return f"invalid {exc.title} setting: " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    from driftgate.model import ModelError
    from driftgate.process import ProcessStartError
    from driftgate.stack import StackError, Terminated

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, ModelError, ProcessStartError, StackError) as exc:
        return _fail(str(exc))
    except ValidationError as exc:  # settings from flags or DRIFTGATE_* variables
        return _fail(_settings_error(exc))
    except Terminated as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("driftgate: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
