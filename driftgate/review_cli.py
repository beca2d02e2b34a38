"""``driftgate review next|label``: a reviewer answers the review queue through the gateway.

The tenant's API key comes from ``$DRIFTGATE_API_KEY`` (never a flag: it would show in
the process list and the shell history), the gateway's URL from ``--gateway-url`` or
``$DRIFTGATE_GATEWAY_URL``. A tenant sees and labels only items of its own requests.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from driftgate.core.client import Call, Client, ServiceError, ServiceUnreachable
from driftgate.core.errors import CliError

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"
KEY_VARIABLE = "DRIFTGATE_API_KEY"


def next_items(adapter: str, limit: int) -> Call[Any]:
    """``GET /v1/review/items``: the caller's unlabelled items of ``adapter``."""
    return Call("GET", "/v1/review/items", params={"adapter": adapter, "limit": str(limit)})


def label_item(item_id: int, *, label: str | None, correction: str | None) -> Call[Any]:
    """``POST /v1/review/items/{id}``: a label or a correction for one item."""
    body = {k: v for k, v in (("label", label), ("correction", correction)) if v is not None}
    return Call("POST", f"/v1/review/items/{item_id}", body=body)


def _send(args: argparse.Namespace, call: Call[Any]) -> Any:
    key = os.environ.get(KEY_VARIABLE)
    if not key:
        raise CliError(f"set ${KEY_VARIABLE} to the tenant's API key")
    try:
        with Client(args.gateway_url, key, timeout_s=30.0) as gateway:
            return gateway.send(call)
    except ServiceUnreachable as exc:
        raise CliError(f"cannot reach the gateway at {args.gateway_url}: {exc}") from exc
    except ServiceError as exc:
        raise CliError(f"{call.method} {call.path}: {exc}") from exc


def _one_line(text: Any, width: int = 100) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def cmd_next(args: argparse.Namespace) -> int:
    data = _send(args, next_items(args.adapter, args.limit))
    items = data.get("data", []) if isinstance(data, dict) else []
    if args.json:
        print(json.dumps(items, indent=2, sort_keys=True))
        return 0
    if not items:
        print(f"no review items for {args.adapter}")
    for item in items:
        print(f"#{item['id']} {item.get('adapter')}@{item.get('version')} {item['request_id']}")
        print(f"    prompt: {_one_line(item.get('prompt'))}")
        print(f"    answer: {_one_line(item.get('completion'))}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    stored = _send(args, label_item(args.id, label=args.label, correction=args.correction))
    print(f"labelled #{args.id} (request {stored.get('request_id')})")
    return 0


def register(sub: Any) -> None:
    """Add ``review`` to the ``driftgate`` command's subparsers."""
    review = sub.add_parser("review", help="answer the review queue (tenant key from the env)")
    review.add_argument(
        "--gateway-url",
        default=os.environ.get("DRIFTGATE_GATEWAY_URL", DEFAULT_GATEWAY_URL),
        help="the gateway (default: $DRIFTGATE_GATEWAY_URL or %(default)s)",
    )
    verbs = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    nxt = verbs.add_parser("next", help="show the next unlabelled items of an adapter")
    nxt.add_argument("--adapter", required=True)
    nxt.add_argument("--limit", type=int, default=10)
    nxt.add_argument("--json", action="store_true", help="print the items as JSON")
    nxt.set_defaults(func=cmd_next)
    lab = verbs.add_parser("label", help="label one item (a label or a correction)")
    lab.add_argument("id", type=int)
    what = lab.add_mutually_exclusive_group(required=True)
    what.add_argument("--label", help="the right label (e.g. the queue's name)")
    what.add_argument("--correction", metavar="TEXT", help="the answer it should have given")
    lab.set_defaults(func=cmd_label)
