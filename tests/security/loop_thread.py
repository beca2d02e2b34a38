"""An event loop in a background thread, for servers a synchronous test calls.

Schemathesis' tests are synchronous (``case.call`` uses ``requests``); the servers
under test are asyncio (uvicorn, the fake engine). They run on this loop, so a blocking
call from the test thread never stalls them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        """Run ``coro`` on the loop and wait for its result here."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def enter(self, cm: AbstractAsyncContextManager[T]) -> T:
        return self.run(cm.__aenter__())

    def exit(self, cm: AbstractAsyncContextManager[Any]) -> None:
        self.run(cm.__aexit__(None, None, None))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
