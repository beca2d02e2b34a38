"""A small NetworkPolicy evaluator: would the cluster let one pod open a connection to another?

It follows the Kubernetes semantics the chart relies on: a pod selected by no policy of a
direction (Ingress, Egress) is open in that direction; a selected pod admits a connection
when any rule of any selecting policy matches the peer (``podSelector``,
``namespaceSelector``, both together, or no peers at all) and the port (number or the
destination container's port name, protocol, ``endPort``). ``ipBlock`` peers are not
modelled: every endpoint here is a pod or an outside service, never an address range, so
such a peer never matches (a flow it alone would allow is refused: safe, and visible).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (labels, namespace, named ports) or an outside
    service (``in_cluster=False``: no pod, so no policy selects it and no selector matches)."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Container port names of the pod (``http`` -> 8080), for policies that name ports.
    named_ports: Mapping[str, int] = field(default_factory=dict)
    in_cluster: bool = True
    namespace_labels: Mapping[str, str] | None = None

    def ns_labels(self) -> Mapping[str, str]:
        if self.namespace_labels is not None:
            return self.namespace_labels
        return {NAMESPACE_NAME_LABEL: self.namespace}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels``, ``matchExpressions``); empty selects everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], [str(v) for v in expr.get("values", [])]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {op!r}")
    return True


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _peer_matches(peer: Mapping[str, Any], policy_ns: str, other: Endpoint) -> bool:
    if not other.in_cluster or "ipBlock" in peer:
        return False
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    if ns_sel is None:
        in_namespace = other.namespace == policy_ns
    else:
        in_namespace = selector_matches(ns_sel, other.ns_labels())
    return in_namespace and selector_matches(pod_sel, other.labels)


def _port_matches(
    rule_ports: Sequence[Mapping[str, Any]] | None, dest: Endpoint, port: int
) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, str) and not want.isdigit():
            number = dest.named_ports.get(want)
            if number == port:
                return True
            continue
        low, high = int(want), int(p.get("endPort", want))
        if low <= port <= high:
            return True
    return False


def _direction_allows(
    policies: Sequence[Mapping[str, Any]],
    subject: Endpoint,
    peer: Endpoint,
    dest: Endpoint,
    port: int,
    direction: str,
) -> Verdict:
    if not subject.in_cluster:
        return Verdict(True, f"{subject.name} is outside the cluster")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and direction in _policy_types(p)
        and selector_matches(p["spec"].get("podSelector"), subject.labels)
    ]
    if not selecting:
        return Verdict(True, f"no {direction} policy selects {subject.name}")
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        ns = policy["metadata"]["namespace"]
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(x, ns, peer) for x in peers)
            if peer_ok and _port_matches(rule.get("ports"), dest, port):
                return Verdict(True, f"{direction} allowed by {policy['metadata']['name']}")
    names = ", ".join(p["metadata"]["name"] for p in selecting)
    return Verdict(False, f"{direction} of {subject.name} dropped (policies: {names})")


def evaluate(
    policies: Sequence[Mapping[str, Any]], source: Endpoint, dest: Endpoint, port: int
) -> Verdict:
    """Would a TCP connection from ``source`` to ``dest``'s container ``port`` get through?
    Both the source's egress and the destination's ingress must allow it."""
    egress = _direction_allows(policies, source, dest, dest, port, "Egress")
    if not egress.allowed:
        return egress
    ingress = _direction_allows(policies, dest, source, dest, port, "Ingress")
    if not ingress.allowed:
        return ingress
    return Verdict(True, f"{egress.reason}; {ingress.reason}")
