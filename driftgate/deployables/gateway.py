"""The gateway deployable: the gateway app alone (``DRIFTGATE_GATEWAY_*`` and the shared
facts)."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings


def app(settings: GatewaySettings | None = None) -> FastAPI:
    return create_app(settings or GatewaySettings())
