"""Manual control of rollouts over HTTP (mounted on the drift service).

``POST /v1/rollouts`` (start), ``GET /v1/rollouts``, ``GET /v1/rollouts/{id}``,
``POST /v1/rollouts/{id}/approve|promote|rollback``. Every route needs
``Authorization: Bearer <admin key>`` (the gateway's admin key, ``DRIFTGATE_ADMIN_KEY``),
reads too: a rollout names a tenant's adapter, its registry path and the canary's live
evidence. The controller acts on the next tick.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from driftgate.core.credentials import check_admin
from driftgate.core.errors import Unavailable
from driftgate.core.limits import INT_COLUMN_MAX
from driftgate.core.lora_check import confine_path
from rollout.machine import Command
from rollout.service import Rollouts

router = APIRouter(prefix="/v1/rollouts")


def _rollouts(request: Request) -> Rollouts:
    rollouts: Rollouts | None = getattr(request.app.state, "rollouts", None)
    if rollouts is None:
        raise Unavailable("rollouts are not enabled on this service", code="rollouts_off")
    return rollouts


def _admin(request: Request) -> Rollouts:
    rollouts = _rollouts(request)
    key = rollouts.settings.admin_key
    check_admin(request.headers.get("authorization"), key.get_secret_value() if key else None)
    return rollouts


Reader = Annotated[Rollouts, Depends(_admin)]
Admin = Annotated[Rollouts, Depends(_admin)]
#: A rollout's id as its table keeps it (a larger one would fail in the query: 422, not 500).
RolloutId = Annotated[int, Path(ge=1, le=INT_COLUMN_MAX)]


class RolloutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adapter: str = Field(min_length=1, max_length=64)
    path: str = Field(min_length=1, max_length=4096)
    canary_weight: float | None = Field(default=None, gt=0, lt=1)
    #: None: the service's approval setting (``auto`` approves).
    approved: bool | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


@router.post("", status_code=201)
async def start_rollout(body: RolloutIn, rollouts: Admin) -> Response:
    s = rollouts.settings
    path = confine_path(body.path, s.adapter_roots)  # the gateway checks it again at loading
    approved = body.approved if body.approved is not None else s.approval == "auto"
    r = await asyncio.to_thread(
        rollouts.store.create,
        body.adapter,
        str(path),
        canary_weight=body.canary_weight or s.canary_weight,
        approved=approved,
        meta=body.meta,
    )
    rollouts.metrics.observe(r)
    return _json(r.as_dict(), status_code=201)


@router.get("")
async def list_rollouts(
    rollouts: Reader, adapter: str | None = None, active: bool = False
) -> Response:
    items = await asyncio.to_thread(rollouts.store.rollouts, adapter, active=active)
    return _json({"data": [r.as_dict() for r in items]})


@router.get("/{rollout_id}")
async def get_rollout(rollout_id: RolloutId, rollouts: Reader) -> Response:
    r = await asyncio.to_thread(rollouts.store.get, rollout_id)
    transitions = await asyncio.to_thread(rollouts.store.transitions, rollout_id)
    return _json({**r.as_dict(), "transitions": transitions})


@router.post("/{rollout_id}/approve")
async def approve(rollout_id: RolloutId, rollouts: Admin) -> Response:
    return _json((await asyncio.to_thread(rollouts.store.approve, rollout_id)).as_dict())


@router.post("/{rollout_id}/promote")
async def promote(rollout_id: RolloutId, rollouts: Admin) -> Response:
    r = await asyncio.to_thread(rollouts.store.command, rollout_id, Command.PROMOTE)
    return _json(r.as_dict())


@router.post("/{rollout_id}/rollback")
async def rollback(rollout_id: RolloutId, rollouts: Admin) -> Response:
    r = await asyncio.to_thread(rollouts.store.command, rollout_id, Command.ROLLBACK)
    return _json(r.as_dict())
