"""``python -m retrain run --adapter NAME [--reason TEXT]``, ``list``, ``show``, ``golden``.

``run`` retrains after a rejection on fresher data (``retrain.attempts``) and prints each
run's record as it ends. Exit status of ``run``, from its last run: 0 promoted or rejected
(the gate decided), 3 too little data, 2 unknown adapter or bad input, 1 failed (reason
printed and recorded).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftgate.core.errors import DriftgateError

if TYPE_CHECKING:
    from retrain.runs import RunRecord

EXIT = {"promoted": 0, "rejected": 0, "insufficient_data": 3, "failed": 1}


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _progress(p: Any) -> None:
    if p.epoch_done:
        print(
            f"epoch {p.epoch}: {p.losses()} step {p.step}/{p.total_steps}",
            file=sys.stderr,
            flush=True,
        )


def cmd_run(args: argparse.Namespace) -> int:
    from retrain.attempts import retrain_with_retries
    from retrain.settings import RetrainSettings
    from retrain.wiring import build_context

    ctx = build_context(RetrainSettings())
    ctx.progress = _progress

    def on_run(record: RunRecord) -> None:
        _print(asdict(record))
        sys.stdout.flush()

    try:
        runs = retrain_with_retries(ctx, args.adapter, args.reason, on_run=on_run)
    finally:
        ctx.runs.dispose()
    return EXIT.get(runs[-1].outcome, 1)


def cmd_list(args: argparse.Namespace) -> int:
    from retrain.registry import Registry
    from retrain.settings import RetrainSettings

    s = RetrainSettings()
    rows = [
        {
            "adapter": m.adapter,
            "version": m.version,
            "status": m.status,
            "parent": m.parent_version,
            "created_at": m.created_at,
            "reason": m.reason,
            "dataset": m.dataset.get("hash"),
            "train": m.dataset.get("train"),
            "tenants": m.dataset.get("tenants"),
        }
        for m in Registry(s.registry_dir).entries(args.adapter)
    ]
    if args.runs:
        from retrain.runs import RunStore

        runs = RunStore(s.state_url)
        runs.create_all()
        try:
            _print(
                {
                    "versions": rows,
                    "runs": [asdict(r) for r in runs.recent(args.adapter, limit=args.limit)],
                }
            )
        finally:
            runs.dispose()
    else:
        _print(rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from retrain.registry import Registry
    from retrain.settings import RetrainSettings

    _print(
        Registry(RetrainSettings().registry_dir)
        .read(args.adapter, args.version)
        .model_dump(mode="json")
    )
    return 0


def cmd_golden(args: argparse.Namespace) -> int:
    from retrain.adapter_task import register_golden
    from retrain.examples import ChatExample
    from retrain.registry import Registry
    from retrain.settings import RetrainSettings

    rows = [json.loads(line) for line in Path(args.file).read_text().splitlines() if line.strip()]
    # Provenance fields are read so that a set exported from traffic is refused.
    examples = [
        ChatExample(
            prompt=r["prompt"],
            completion=r["completion"],
            system=r.get("system"),
            tenant=r.get("tenant"),
            request_id=r.get("request_id"),
        )
        for r in rows
    ]
    digest = register_golden(
        Registry(RetrainSettings().registry_dir), args.adapter, examples, replace=args.replace
    )
    _print({"adapter": args.adapter, "examples": len(examples), "hash": digest})
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m retrain", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="curate, train, gate and hand off a new version")
    run.add_argument("--adapter", required=True)
    run.add_argument("--reason", default="manual")
    run.set_defaults(fn=cmd_run)
    ls = sub.add_parser("list", help="registered versions (and runs with --runs)")
    ls.add_argument("--adapter")
    ls.add_argument("--runs", action="store_true")
    ls.add_argument("--limit", type=int, default=20)
    ls.set_defaults(fn=cmd_list)
    show = sub.add_parser("show", help="one version's metadata")
    show.add_argument("--adapter", required=True)
    show.add_argument("--version", type=int, required=True)
    show.set_defaults(fn=cmd_show)
    golden = sub.add_parser("golden", help="register an adapter's frozen golden set (JSONL)")
    golden.add_argument("--adapter", required=True)
    golden.add_argument("--file", required=True)
    golden.add_argument("--replace", action="store_true")
    golden.set_defaults(fn=cmd_golden)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return int(args.fn(args))
    except DriftgateError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
