"""The NetworkPolicy evaluator, on hand-written policies and on the rendered chart's."""

from __future__ import annotations

import socket
import threading
from typing import Any

from tests.deploy.policy import Endpoint, evaluate, selector_matches
from tests.deploy.proxy import Backend, FlowLog, PolicyProxy, Route
from tests.deploy.release import render_release

APP = {"app": "api"}
DB = Endpoint("db-0", "ml", {"app": "db"}, {"sql": 5432})
API = Endpoint("api-0", "ml", APP, {"http": 8080})


def _policy(spec: dict[str, Any], name: str = "p", namespace: str = "ml") -> dict[str, Any]:
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


DB_FROM_API = _policy(
    {
        "podSelector": {"matchLabels": {"app": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": APP}}], "ports": [{"port": "sql"}]}],
    }
)


def test_a_pod_no_policy_selects_is_open() -> None:
    verdict = evaluate([DB_FROM_API], DB, API, 8080)
    assert verdict.allowed, verdict.reason


def test_ingress_admits_the_listed_pods_on_the_named_port_only() -> None:
    assert evaluate([DB_FROM_API], API, DB, 5432).allowed
    assert not evaluate([DB_FROM_API], API, DB, 5433).allowed
    other = Endpoint("web-0", "ml", {"app": "web"})
    verdict = evaluate([DB_FROM_API], other, DB, 5432)
    assert not verdict.allowed and "dropped" in verdict.reason


def test_a_pod_selector_alone_matches_only_the_policys_namespace() -> None:
    api_elsewhere = Endpoint("api-0", "other", APP)
    assert not evaluate([DB_FROM_API], api_elsewhere, DB, 5432).allowed


def test_namespace_and_pod_selectors_in_one_peer_must_both_match() -> None:
    policy = _policy(
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "a"}},
                            "podSelector": {"matchLabels": APP},
                        }
                    ]
                }
            ],
        }
    )
    team_a_api = Endpoint("x", "a-ns", APP, namespace_labels={"team": "a"})
    team_a_web = Endpoint("y", "a-ns", {"app": "web"}, namespace_labels={"team": "a"})
    assert evaluate([policy], team_a_api, DB, 5432).allowed
    assert not evaluate([policy], team_a_web, DB, 5432).allowed


def test_egress_is_checked_at_the_source_and_an_outside_service_matches_no_peer() -> None:
    policy = _policy(
        {
            "podSelector": {"matchLabels": APP},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                    "ports": [{"port": 5432, "endPort": 5440}],
                }
            ],
        }
    )
    assert evaluate([policy], API, DB, 5432).allowed
    assert not evaluate([policy], API, DB, 5441).allowed
    outside = Endpoint("postgresql", "(outside)", in_cluster=False)
    assert not evaluate([policy], API, outside, 5432).allowed
    assert evaluate([], API, outside, 5432).allowed


def test_match_expressions() -> None:
    sel = {
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "x", "operator": "DoesNotExist"},
        ]
    }
    assert selector_matches(sel, {"tier": "a"})
    assert not selector_matches(sel, {"tier": "c"})
    assert not selector_matches(sel, {"tier": "a", "x": "1"})
    assert selector_matches({}, {"anything": "1"})


def _chart_endpoints() -> tuple[list[dict[str, Any]], dict[str, Endpoint]]:
    rendered = render_release()
    by_component = {}
    for pod in rendered.pods:
        component = pod.labels["app.kubernetes.io/component"]
        by_component[component] = Endpoint(pod.name, pod.namespace, pod.labels, pod.named_ports)
    return rendered.policies, by_component


def test_the_rendered_policies_allow_the_flows_the_loop_needs_and_drop_others() -> None:
    policies, pods = _chart_endpoints()
    gateway, drift, vllm = pods["gateway"], pods["drift"], pods["vllm"]
    allowed = [(gateway, vllm, 8000), (gateway, drift, 8090), (drift, gateway, 8080)]
    for src, dst, port in allowed:
        verdict = evaluate(policies, src, dst, port)
        assert verdict.allowed, f"{src.name} -> {dst.name}:{port}: {verdict.reason}"
    client = Endpoint("app", "ingress-nginx")
    stranger = Endpoint("app", "default")
    prometheus = Endpoint("prometheus", "monitoring")
    assert evaluate(policies, client, gateway, 8080).allowed
    assert evaluate(policies, prometheus, drift, 8090).allowed
    dropped = [
        (client, vllm, 8000),
        (stranger, gateway, 8080),
        (drift, vllm, 8000),
        (client, drift, 8090),
    ]
    for src, dst, port in dropped:
        assert not evaluate(policies, src, dst, port).allowed, f"{src.name} -> {dst.name}:{port}"


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(1024))

    threading.Thread(target=serve, daemon=True).start()
    return server, int(server.getsockname()[1])


def _exchange(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"ping")
        try:
            return s.recv(1024)
        except ConnectionResetError:
            return b""


def test_the_proxy_refuses_a_flow_the_policies_drop_and_records_both() -> None:
    """A real TCP server behind the proxy: the gateway's connection gets through, a
    stranger's is closed unanswered, and the flow log says which and why."""
    policies, pods = _chart_endpoints()
    server, port = _echo_server()
    log = FlowLog()
    proxy = PolicyProxy(policies, log)
    try:
        backend = Backend(pods["vllm"], 8000, port)
        via_gateway = proxy.add_route(Route(pods["gateway"], "vllm", 8000, lambda: [backend]))
        via_client = proxy.add_route(
            Route(Endpoint("app", "ingress-nginx"), "vllm", 8000, lambda: [backend])
        )
        assert _exchange(via_gateway) == b"ping"
        assert _exchange(via_client) == b""
    finally:
        proxy.close()
        server.close()
    flows = log.flows()
    assert [(f.caller, f.allowed) for f in flows] == [(pods["gateway"].name, True), ("app", False)]
    assert log.dropped()[0].reason.startswith("Ingress of dg-driftgate-vllm-0 dropped"), (
        log.summary()
    )
