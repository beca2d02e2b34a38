"""The security tests attack the real gateway (tests/gateway's stack: uvicorn, a real
SQLite state store, the fake engine where no generation is needed)."""

from tests.drift.conftest import store
from tests.gateway.conftest import make_stack, stack

__all__ = ["make_stack", "stack", "store"]
