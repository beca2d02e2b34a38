"""``driftgate rollout start|status|promote|rollback`` (talks to the drift service over HTTP).

Hook into ``driftgate/cli.py``'s ``build_parser``::

    from rollout.cli import register as register_rollout
    register_rollout(sub)

Each command sets ``func`` (returns the exit status) and raises
``driftgate.core.errors.CliError`` for errors the user can fix.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from driftgate.core import drift_api
from driftgate.core.client import Call, Client, ServiceError, ServiceUnreachable
from driftgate.core.errors import CliError

DEFAULT_DRIFT_URL = "http://127.0.0.1:8090"


def _error(message: str) -> Exception:
    return CliError(message)


def _call(args: argparse.Namespace, call: Call[Any]) -> Any:
    try:
        with Client(args.drift_url, args.admin_key or None, timeout_s=30.0) as drift:
            return drift.send(call)
    except ServiceUnreachable as exc:
        raise _error(f"cannot reach the drift service at {args.drift_url}: {exc}") from exc
    except ServiceError as exc:
        raise _error(f"{call.method} {call.path}: {exc}") from exc


def _arm(stats: dict[str, Any]) -> str:
    mean = stats.get("confidence_mean")
    confidence = "-" if mean is None else f"{mean:.3f} ({stats.get('confidence_requests', 0)})"
    return (
        f"requests {stats.get('requests', 0)}, negative {stats.get('negative', 0)}/"
        f"{stats.get('feedback', 0)}, confidence {confidence}"
    )


def judged_line(decision: dict[str, Any]) -> str | None:
    """The signals a canary's decision was taken on, one line (None: not a judge's decision).

    >>> line = judged_line({"verdict": "promote", "candidate": {"requests": 60, "feedback": 3,
    ...     "confidence_mean": -0.2, "confidence_requests": 60}, "serving": {"requests": 61}})
    >>> print(*line.split("; "), sep=chr(10))
    judged: candidate requests 60, negative 0/3, confidence -0.200 (60)
    serving requests 61, negative 0/0, confidence -
    >>> judged_line({"manual": True}) is None
    True
    """
    cand, serving = decision.get("candidate"), decision.get("serving")
    if not isinstance(cand, dict) or not isinstance(serving, dict):
        return None
    return f"judged: candidate {_arm(cand)}; serving {_arm(serving)}"


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return
    items: list[Any] = data["data"] if isinstance(data, dict) and "data" in data else [data]
    for r in items:
        line = (
            f"#{r['id']} {r['adapter']}: {r['state']}"
            f" candidate v{r['candidate_version'] or '?'} (serving v{r['serving_version'] or '-'},"
            f" canary {r['canary_weight']:.0%})"
        )
        if r.get("outcome"):
            line += f" outcome={r['outcome']}"
        print(line + (f" - {r['reason']}" if r.get("reason") else ""))
        judged = judged_line(r.get("decision") or {})
        if judged:
            print(f"    {judged}")
        for t in r.get("transitions", []):
            print(f"    {t['from'] or '':>12} -> {t['to']:<12} {t['reason']}")


def cmd_start(args: argparse.Namespace) -> int:
    if args.id is not None:
        data = _call(args, drift_api.rollout_command(args.id, "approve"))
    else:
        if not args.adapter or not args.path:
            raise _error("give --adapter and --path (a new rollout) or --id (approve one)")
        path = str(Path(args.path).expanduser().resolve())
        start = drift_api.start_rollout(
            args.adapter, path, approved=True, canary_weight=args.canary_weight
        )
        data = _call(args, start)
    _print(data, args.json)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.id is not None:
        data = _call(args, drift_api.get_rollout(args.id))
    else:
        data = _call(args, drift_api.list_rollouts(args.adapter))
    _print(data, args.json)
    return 0


def _command(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        _print(_call(args, drift_api.rollout_command(args.id, verb)), args.json)
        return 0

    return run


def register(sub: Any) -> argparse.ArgumentParser:
    """Add ``rollout`` and its actions to a ``add_subparsers()`` object."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--drift-url",
        default=os.environ.get("DRIFTGATE_DRIFT_URL", DEFAULT_DRIFT_URL),
        help="drift service URL (default: $DRIFTGATE_DRIFT_URL or %(default)s)",
    )
    common.add_argument(
        "--admin-key",
        default=os.environ.get("DRIFTGATE_ADMIN_KEY"),
        help="admin key (default: $DRIFTGATE_ADMIN_KEY)",
    )
    common.add_argument("--json", action="store_true", help="print JSON")

    p: argparse.ArgumentParser = sub.add_parser(
        "rollout", help="hot swap: start, watch and override rollouts"
    )
    acts = p.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")
    start = acts.add_parser("start", parents=[common], help="start a rollout or approve one")
    start.add_argument("--adapter")
    start.add_argument("--path", help="PEFT directory of the candidate")
    start.add_argument("--canary-weight", dest="canary_weight", type=float)
    start.add_argument("--id", type=int, help="approve the waiting rollout ID instead")
    start.set_defaults(func=cmd_start)
    status = acts.add_parser("status", parents=[common], help="list rollouts or show one")
    status.add_argument("--adapter")
    status.add_argument("--id", type=int)
    status.set_defaults(func=cmd_status)
    for verb in ("promote", "rollback"):
        a = acts.add_parser(verb, parents=[common], help=f"{verb} a rollout in canary now")
        a.add_argument("id", type=int)
        a.set_defaults(func=_command(verb))
    return p
