"""Request ids bound to the tenant they were issued to: any replica checks them, statelessly.

A request id is ``<prefix><head><tag>``: ``head`` is a :func:`~driftgate.core.ids.time_ordered_id`
(32 hex digits: milliseconds, then 80 random bits), so ids still sort by creation time
and cannot be guessed; ``tag`` is the first 24 hex digits (96 bits) of
HMAC-SHA256(secret, tenant NUL prefix+head). ``POST /v1/feedback`` accepts only an id
whose tag matches the calling tenant, so one tenant cannot rate (or learn anything
about) another's requests, and a made-up id is refused, without a lookup: request
events reach the drift service batched and best effort, so feedback may arrive before
the event it rates. Every gateway replica must share the secret
(``DRIFTGATE_GATEWAY_REQUEST_ID_SECRET``); with none set, each process draws its own
and feedback works only on the replica that served the request.
"""

from __future__ import annotations

import hmac
import logging
import os

log = logging.getLogger(__name__)

#: Hex digits of the tag: 96 bits, so a forged id matches once in 2**96 tries.
TAG_HEX = 24
_HEAD_HEX = 32
_HEX = frozenset("0123456789abcdef")


class RequestIds:
    """Issues and verifies tenant-bound request ids with one secret.

    >>> from driftgate.core.ids import time_ordered_id
    >>> ids = RequestIds(b"k" * 32)
    >>> rid = ids.bind("chatcmpl-" + time_ordered_id(), "acme")
    >>> len(rid), ids.issued_to(rid, "acme"), ids.issued_to(rid, "other")
    (65, True, False)
    >>> ids.issued_to(rid[:-1] + ("0" if rid[-1] != "0" else "1"), "acme")
    False
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the request id secret must be at least 16 bytes")
        self._secret = secret

    @classmethod
    def from_secret(cls, secret: str | None) -> RequestIds:
        """With the configured secret; none: a random one for this process (and a warning)."""
        if secret:
            return cls(secret.encode())
        log.warning(
            "DRIFTGATE_GATEWAY_REQUEST_ID_SECRET is unset: request ids are signed with a "
            "random secret of this process, so feedback is accepted only by this gateway "
            "replica and only until it restarts; set one shared secret on every replica"
        )
        return cls(os.urandom(32))

    def _tag(self, tenant: str, head: str) -> str:
        msg = tenant.encode("utf-8", "surrogateescape") + b"\0" + head.encode()
        return hmac.digest(self._secret, msg, "sha256").hex()[:TAG_HEX]

    def bind(self, unbound: str, tenant: str) -> str:
        """``unbound`` (prefix and a time-ordered id) with the tag that binds it to ``tenant``."""
        return unbound + self._tag(tenant, unbound)

    def issued_to(self, request_id: str, tenant: str) -> bool:
        """Whether this gateway (any replica with the same secret) issued the id to ``tenant``."""
        if len(request_id) < _HEAD_HEX + TAG_HEX or not request_id.isascii():
            return False
        unbound, tag = request_id[:-TAG_HEX], request_id[-TAG_HEX:]
        if not _HEX.issuperset(tag):
            return False
        return hmac.compare_digest(self._tag(tenant, unbound), tag)
