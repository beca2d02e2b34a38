"""Cluster DNS names of the rendered Services (and StatefulSet pods), rewritten to loopback.

A Service ``svc`` in namespace ``ns`` answers as ``svc``, ``svc.ns``, ``svc.ns.svc`` and
``svc.ns.svc.cluster.local``; a StatefulSet pod ``pod`` under its headless Service as
``pod.svc`` and the same longer forms. Outside services the chart only names (the
PostgreSQL of ``state.url``) are resolved the same way when the harness is told of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

CLUSTER_DOMAIN = "cluster.local"

# host:port, the host a dotted DNS name (no scheme, no user info, no path).
_HOST_PORT = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*):(\d+)(?![\d])")


@dataclass(frozen=True)
class Target:
    """What a DNS name stands for: a Service, and one pod of it for a pod's own name."""

    service: str
    pod: str | None = None


def names_of(service: str, namespace: str, pod: str | None = None) -> list[str]:
    base = f"{pod}.{service}" if pod else service
    return [
        base,
        f"{base}.{namespace}",
        f"{base}.{namespace}.svc",
        f"{base}.{namespace}.svc.{CLUSTER_DOMAIN}",
    ]


def dns_table(
    namespace: str,
    services: Iterable[str],
    pods_by_subdomain: Mapping[str, Iterable[str]],
) -> dict[str, Target]:
    """Every name the cluster DNS would answer for these Services and pods."""
    table: dict[str, Target] = {}
    for svc in services:
        for name in names_of(svc, namespace):
            table[name] = Target(svc)
        for pod in pods_by_subdomain.get(svc, ()):
            for name in names_of(svc, namespace, pod):
                table[name] = Target(svc, pod)
    return table


def rewrite(
    text: str, table: Mapping[str, Target], address: Callable[[Target, int], str]
) -> tuple[str, list[tuple[Target, int]]]:
    """Replace every ``<cluster name>:<port>`` in ``text`` by ``address(target, port)``.

    >>> t = dns_table("ml", ["db"], {})
    >>> rewrite("postgresql://u@db.ml.svc:5432/x", t, lambda t, p: f"127.0.0.1:{p + 1}")
    ('postgresql://u@127.0.0.1:5433/x', [(Target(service='db', pod=None), 5432)])
    >>> rewrite("http://example.com:80/", t, lambda t, p: "no")[0]
    'http://example.com:80/'
    """
    hits: list[tuple[Target, int]] = []

    def sub(match: re.Match[str]) -> str:
        target = table.get(match.group(1).lower())
        if target is None:
            return match.group(0)
        port = int(match.group(2))
        hits.append((target, port))
        return address(target, port)

    return _HOST_PORT.sub(sub, text), hits
