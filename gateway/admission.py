"""Back-pressure in front of the engine connections: a full pool queues, then refuses.

Each gateway process holds at most ``upstream_connections`` requests at the engines at
once (a stream holds its slot until it ends). A request over that waits up to
``upstream_queue_timeout_s`` for a slot, then gets 503 ``gateway_saturated`` with
``Retry-After``. Without this, the excess waited inside the HTTP client's pool, where the
wait counts toward the connect timeout and a connect timeout marks the replica down: a
busy replica was taken out of service for being busy.
"""

from __future__ import annotations

import asyncio

from driftgate.core.errors import Unavailable


class Saturated(Unavailable):
    """Every engine connection of this gateway is busy and none freed up in time."""

    code = "gateway_saturated"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class Admission:
    """At most ``slots`` holders at once; the rest wait up to ``queue_timeout_s``.

    >>> async def demo() -> list[str]:
    ...     gate = Admission(slots=1, queue_timeout_s=0.01)
    ...     await gate.acquire()
    ...     try:
    ...         await gate.acquire()
    ...     except Saturated as exc:
    ...         return [exc.code, exc.headers["Retry-After"], str(gate.in_use)]
    ...     return []
    >>> asyncio.run(demo())
    ['gateway_saturated', '1', '1']
    """

    def __init__(self, slots: int, queue_timeout_s: float, *, retry_after_s: int = 1) -> None:
        self.slots = slots
        self._free = asyncio.Semaphore(slots)
        self._timeout = queue_timeout_s
        self._retry_after = retry_after_s
        self.in_use = 0
        self.waiting = 0

    async def acquire(self) -> None:
        """Take a slot, waiting up to the queue timeout; raises :class:`Saturated`."""
        if self._free.locked():
            self.waiting += 1
            try:
                await asyncio.wait_for(self._free.acquire(), self._timeout)
            except TimeoutError:
                raise Saturated(
                    f"all {self.slots} engine connections of this gateway are busy; retry later",
                    retry_after_s=self._retry_after,
                ) from None
            finally:
                self.waiting -= 1
        else:
            await self._free.acquire()
        self.in_use += 1

    def release(self) -> None:
        self.in_use -= 1
        self._free.release()
