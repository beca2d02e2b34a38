"""Per-tenant limits shared by every gateway replica through Redis.

The same three limits and semantics as :class:`gateway.limits.MemoryLimiter`, kept in
Redis so N replicas admit a tenant's limits once, not N times. One Lua script checks
all three and takes the bucket token and the concurrency lease atomically (one round
trip per request); a second one, run in the background when the request ends, charges
its tokens and gives the lease back. The clock is Redis's own (``TIME``), so replicas
whose clocks differ still share one bucket. Why our own scripts rather than the
``limits`` library: it has fixed and moving windows, not a token bucket with burst and
an exact Retry-After, nor a charge after the fact or expiring concurrency leases.

Keys, per tenant (the ``{tenant}`` hash tag keeps them in one Redis Cluster slot), each
expiring once it could only hold its initial value:

* ``<prefix>:{<tenant>}:rate``  hash ``tokens``, ``stamp``: the request bucket
* ``<prefix>:{<tenant>}:tpm``   hash second -> tokens: the last 60 s of tokens
* ``<prefix>:{<tenant>}:conc``  sorted set lease id -> expiry: requests in flight
* ``<prefix>:{<tenant>}:feedback``  hash ``tokens``, ``stamp``: the feedback bucket
  (the admit script with no token budget and no cap touches only its first key)

When Redis fails or answers late (socket timeouts of ``limits_redis_timeout_s``), the
gateway *fails open to this replica's limits*: the request is decided by an in-memory
limiter (as without Redis, N replicas admit N times the tenant's limits),
``driftgate_gateway_limiter_errors_total`` counts the failure and Redis is not tried
again for ``limits_redis_retry_s``. Availability wins over exactness: a tenant keeps
being served, still under a (looser) limit; an alert pages (docs/CONTRACTS.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from driftgate.core.state.models import TenantInfo
from gateway.limits import CONCURRENCY_RETRY_S, WINDOW_S, Lease, MemoryLimiter, refusal
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

#: KEYS: rate, tpm, conc. ARGV: rate, burst, tokens_per_minute, max_concurrent,
#: lease id, lease ttl (s). Returns {"ok"|"rate"|"tokens"|"concurrency", retry_after_s}
#: (strings: Redis truncates Lua numbers to integers).
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tpm, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl = tonumber(ARGV[6])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= cap then return {'concurrency', ARGV[7]} end
end
if tpm > 0 then
  local cutoff = math.floor(now) - WINDOW
  local slots = redis.call('HGETALL', KEYS[2])
  local live, used = {}, 0
  for i = 1, #slots, 2 do
    local s, n = tonumber(slots[i]), tonumber(slots[i + 1])
    if s <= cutoff then
      redis.call('HDEL', KEYS[2], slots[i])
    else
      used = used + n
      table.insert(live, {s, n})
    end
  end
  if used >= tpm then
    table.sort(live, function(a, b) return a[1] < b[1] end)
    for _, slot in ipairs(live) do
      used = used - slot[2]
      if used < tpm then return {'tokens', tostring(slot[1] + WINDOW - now)} end
    end
  end
end
if rate > 0 then
  local full = math.max(burst, 1)
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
  local tokens = full
  if b[1] then
    tokens = math.min(full, tonumber(b[1]) + math.max(0, now - tonumber(b[2])) * rate)
  end
  if tokens < 1 then return {'rate', tostring((1 - tokens) / rate)} end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'stamp', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.min(full / rate + 1, 86400) * 1000))
end
if cap > 0 then
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[5])
  redis.call('PEXPIRE', KEYS[3], math.ceil((ttl + 1) * 1000))
end
return {'ok', '0'}
""".replace("WINDOW", str(WINDOW_S))

#: KEYS: tpm, conc. ARGV: tokens to charge, lease id to give back ('' for none).
_SETTLE = """
local n = tonumber(ARGV[1])
if n > 0 then
  local second = redis.call('TIME')[1]
  redis.call('HINCRBY', KEYS[1], second, n)
  redis.call('EXPIRE', KEYS[1], WINDOW + 1)
end
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 0
""".replace("WINDOW", str(WINDOW_S))


#: KEYS: conc. ARGV: lease ttl (s), then the lease ids still held: each (if still there)
#: now expires a ttl from Redis's now.
_RENEW = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[1]) + 1) * 1000))
return 0
"""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RedisTimeout | TimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection"
    return "error"


class RedisLimiter:
    """Limits in Redis, shared by every replica; fails open to a :class:`MemoryLimiter`."""

    def __init__(
        self,
        url: str,
        metrics: GatewayMetrics,
        *,
        prefix: str,
        lease_ttl_s: float,
        timeout_s: float,
        retry_s: float,
    ) -> None:
        # No retries inside the client: a request must not wait through a retry loop.
        self._redis: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)
        self._renew = self._redis.register_script(_RENEW)
        self._prefix = prefix
        self._ttl = lease_ttl_s
        self._retry_s = retry_s
        self._errors = metrics.limiter_errors
        self._local = MemoryLimiter(lease_ttl_s)
        self._down_until = 0.0
        self._background: set[asyncio.Task[None]] = set()
        #: Slots this replica holds in Redis, per tenant (lease ids), for renewal.
        self._held: dict[str, set[str]] = {}

    def _keys(self, tenant: str) -> tuple[str, str, str]:
        base = f"{self._prefix}:{{{tenant}}}"
        return f"{base}:rate", f"{base}:tpm", f"{base}:conc"

    def _feedback_keys(self, tenant: str) -> tuple[str, str, str]:
        """The feedback bucket first; the other two are never touched (no budget, no cap)."""
        _, tpm, conc = self._keys(tenant)
        return f"{self._prefix}:{{{tenant}}}:feedback", tpm, conc

    def _failed(self, exc: BaseException, now: float) -> None:
        reason = _reason(exc)
        self._errors.labels(reason).inc()
        if self._down_until == 0.0:
            log.warning("limits store unreachable (%s: %s): per-replica limits now", reason, exc)
        self._down_until = now + self._retry_s

    def _reached(self) -> None:
        if self._down_until:
            log.warning("limits store reachable again: limits shared across replicas")
            self._down_until = 0.0

    async def admit(self, tenant: TenantInfo, lease_id: str, now: float) -> Lease:
        if now < self._down_until:
            return self._local.admit_now(tenant, lease_id, now)
        args: list[Any] = [
            repr(float(tenant.rate_limit_rps)),
            tenant.burst,
            tenant.tokens_per_minute,
            tenant.max_concurrent,
            lease_id,
            repr(float(self._ttl)),
            repr(CONCURRENCY_RETRY_S),
        ]
        try:
            verdict, wait = await self._admit(keys=self._keys(tenant.name), args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc, now)
            return self._local.admit_now(tenant, lease_id, now)
        self._reached()
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict != "ok":
            raise refusal(verdict, tenant, float(wait))
        if tenant.max_concurrent > 0:
            self._held.setdefault(tenant.name, set()).add(lease_id)
        return Lease(
            tenant.name,
            lease_id,
            charge=tenant.tokens_per_minute > 0,
            slot=tenant.max_concurrent > 0,
        )

    async def admit_feedback(self, tenant: TenantInfo, now: float) -> None:
        if now < self._down_until:
            self._local.admit_feedback_now(tenant, now)
            return
        args: list[Any] = [repr(float(tenant.rate_limit_rps)), tenant.burst, 0, 0, "", "0", "0"]
        try:
            verdict, wait = await self._admit(keys=self._feedback_keys(tenant.name), args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc, now)
            self._local.admit_feedback_now(tenant, now)
            return
        self._reached()
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict != "ok":
            raise refusal("feedback", tenant, float(wait))

    def settle(self, lease: Lease, tokens: int, now: float, *, release: bool = True) -> None:
        if lease.local:
            self._local.settle(lease, tokens, now, release=release)
            return
        charge = tokens if lease.charge and tokens > 0 else 0
        give_back = lease.id if release and lease.slot else ""
        if give_back:
            held = self._held.get(lease.tenant)
            if held is not None:
                held.discard(give_back)
                if not held:
                    del self._held[lease.tenant]
        if charge or give_back:
            task = asyncio.get_running_loop().create_task(self._write(lease, charge, give_back))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _write(self, lease: Lease, tokens: int, lease_id: str) -> None:
        _, tpm, conc = self._keys(lease.tenant)
        try:
            await self._settle(keys=[tpm, conc], args=[tokens, lease_id])
        except (RedisError, OSError, TimeoutError) as exc:
            # Lost: the tokens go uncharged, the lease ages out after its ttl.
            self._failed(exc, time.perf_counter())

    async def renew_held(self, now: float) -> None:
        self._local.renew_held_now(now)
        if now < self._down_until:
            return
        for tenant, held in list(self._held.items()):
            _, _, conc = self._keys(tenant)
            try:
                await self._renew(keys=[conc], args=[repr(float(self._ttl)), *held])
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed(exc, now)  # tried again next round, before the ttl runs out
                return

    def forget(self, keep: set[str]) -> None:
        self._local.forget(keep)  # Redis keys expire on their own

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=1.0)
        await self._redis.aclose()
