"""The Helm chart: lint, render, Kubernetes and CRD schema validation, values schema, and
the wiring between its parts (selectors, RBAC, network policies, alert and dashboard copies)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import GatewaySettings
from tests.sre.chart_render import (
    KUBE_VERSION,
    NAMESPACE,
    PRODUCTION_VALUES,
    find,
    lint,
    load_values,
    manifests,
    render,
)
from tests.sre.sre_helpers import (
    ALERTS,
    CHART,
    DASHBOARDS,
    INSTALL_HINT,
    SCHEMA_CHECK,
    require_node_package,
)

VALUE_SETS = {"default": None, "gpu-production": PRODUCTION_VALUES}
CRD_GROUP = "monitoring.coreos.com/"


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, str, list[dict[str, Any]]]:
    values = load_values(VALUE_SETS[request.param])
    text = render(values)
    return request.param, text, [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_strict_is_clean(name: str) -> None:
    result = lint(load_values(VALUE_SETS[name]))
    assert result["errors"] == [], result
    assert result["messages"] == [], result


def test_every_manifest_validates_strictly(
    rendered: tuple[str, str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    name, text, docs = rendered
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "-k", KUBE_VERSION, "--strict", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    if "No module named kubernetes_validate" in out:
        pytest.fail(f"kubernetes-validate is not installed: {INSTALL_HINT}", pytrace=False)
    assert proc.returncode == 0, out
    builtin = [d for d in docs if not d["apiVersion"].startswith(CRD_GROUP)]
    assert out.count(" passed for resource ") == len(builtin), out
    skipped = [line for line in out.splitlines() if line.startswith("WARN")]
    assert all("monitoring.coreos.com" in line for line in skipped), skipped


def test_retrain_job_template_validates(rendered: tuple[str, str, list[dict[str, Any]]]) -> None:
    import kubernetes_validate

    _, _, docs = rendered
    job = yaml.safe_load(find(docs, "ConfigMap", "-retrain-job")["data"]["job.yaml"])
    assert job["kind"] == "Job"
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "retrain"
    assert container["command"] + container["args"] == [
        "python",
        "-m",
        "retrain",
        "run",
        "--adapter",
        "$ADAPTER",
        "--reason",
        "$REASON",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["DRIFTGATE_STATE_URL"]["valueFrom"]["secretKeyRef"]


def test_drift_service_renders_the_job_template(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    """The drift service's own renderer turns the chart's template into a valid Job."""
    import kubernetes_validate

    from drift.trigger import render_job

    _, _, docs = rendered
    template = find(docs, "ConfigMap", "-retrain-job")["data"]["job.yaml"]
    job = render_job(template, "support", 3, "drift")
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "run",
        "--adapter",
        "support",
        "--reason",
        "drift",
    ]
    assert job["metadata"]["name"].startswith("retrain-support-")


def test_custom_resources_validate_against_their_crds(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    require_node_package("@kubernetes-models/prometheus-operator")
    _, _, docs = rendered
    crs = [d for d in docs if d["apiVersion"].startswith(CRD_GROUP)]
    assert sorted(d["kind"] for d in crs) == ["PrometheusRule"] + ["ServiceMonitor"] * 3
    proc = _validate_crds(crs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok ") == len(crs)


def _validate_crds(crs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(SCHEMA_CHECK / "validate_crds.mjs")],
        input=json.dumps(crs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=SCHEMA_CHECK,
    )


def test_crd_validation_rejects_a_broken_rule() -> None:
    require_node_package("@kubernetes-models/prometheus-operator")
    rule = find(manifests({}), "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = 5
    proc = _validate_crds([rule])
    assert proc.returncode == 1
    assert "must be string" in proc.stdout


BAD_VALUES: dict[str, dict[str, Any]] = {
    "unknown top-level key": {"replicaCount": 2},
    "unknown nested key": {"gateway": {"replicaCount": 3}},
    "bad pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "zero vLLM replicas": {"engine": {"replicas": 0}},
    "LoRA rank vLLM rejects": {"engine": {"maxLoraRank": 17}},
    "GPU memory share above 1": {"engine": {"gpuMemoryUtilization": 1.5}},
    "port as a string": {"gateway": {"port": "8080"}},
    "nonsense CPU quantity": {"gateway": {"resources": {"requests": {"cpu": "lots"}}}},
    "lower-case env setting": {"drift": {"env": {"window_size": "5"}}},
    "no state store at all": {"state": {"url": "", "existingSecret": ""}},
    "state URL of an unsupported database": {"state": {"url": "mysql://x/y"}},
    "vLLM flag without dashes": {"engine": {"extraArgs": ["enable-prefix-caching"]}},
    "bad dtype": {"engine": {"dtype": "int3"}},
    "scrape interval not a duration": {"monitoring": {"interval": "often"}},
    "label value not a string": {"networkPolicy": {"adminPodLabels": {"driftgate.io/admin": 5}}},
    "admin label selector removed": {"networkPolicy": {"adminPodLabels": None}},
    "HPA min above max": {"gateway": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}},
    "fewer CPU LoRA slots than GPU ones": {"engine": {"maxLoras": 8, "maxCpuLoras": 4}},
    "runbook base URL not a URL": {"monitoring": {"runbookBaseUrl": "wiki"}},
    "both the chart's and an external Redis": {
        "limits": {"redis": {"enabled": True}, "existingSecret": "redis-url"}
    },
    "tool-call parser with a shell metacharacter": {"engine": {"toolCallParser": "x;rm"}},
    "answer confidence not a boolean": {"gateway": {"answerConfidence": "yes"}},
    "Redis memory not a size": {"limits": {"redis": {"maxMemory": "lots"}}},
    "alert rules without runbook links": {"monitoring": {"runbookBaseUrl": ""}},
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_are_rejected(case: str) -> None:
    with pytest.raises(Exception) as info:
        render(BAD_VALUES[case])
    message = str(info.value)
    assert any(s in message for s in ("schema", "must not exceed", "must be at least")), message


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_services_and_monitors_select_pods(rendered: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, docs = rendered
    pods = [_pod_labels(d) for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    for svc in (d for d in docs if d["kind"] == "Service"):
        sel = svc["spec"]["selector"]
        assert any(sel.items() <= p.items() for p in pods), svc["metadata"]["name"]
    services = [d["metadata"]["labels"] for d in docs if d["kind"] == "Service"]
    for mon in (d for d in docs if d["kind"] == "ServiceMonitor"):
        sel = mon["spec"]["selector"]["matchLabels"]
        assert any(sel.items() <= s.items() for s in services), mon["metadata"]["name"]
        assert mon["spec"]["endpoints"][0]["path"] == "/metrics"
    for kind in ("PodDisruptionBudget",):
        sel = find(docs, kind, "-gateway")["spec"]["selector"]["matchLabels"]
        assert sel.items() <= _pod_labels(find(docs, "Deployment", "-gateway")).items()
    hpa = find(docs, "HorizontalPodAutoscaler", "-gateway")
    assert (
        hpa["spec"]["scaleTargetRef"]["name"]
        == find(docs, "Deployment", "-gateway")["metadata"]["name"]
    )
    assert "replicas" not in find(docs, "Deployment", "-gateway")["spec"]


def test_vllm_runs_lora_on_gpus_with_health_probes(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    name, _, docs = rendered
    sts = find(docs, "StatefulSet", "-vllm")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert "--enable-lora" in args
    assert any(a.startswith("--max-loras=") for a in args)
    assert any(a.startswith("--max-lora-rank=") for a in args)
    # Apps send tool_choice; vLLM refuses it unless a tool-call parser is set.
    assert "--enable-auto-tool-choice" in args and "--tool-call-parser=hermes" in args
    assert _env(container)["VLLM_ALLOW_RUNTIME_LORA_UPDATING"]["value"] == "True"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert "adapters" in mounts
    claim = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "adapters")
    drift = find(docs, "Deployment", "-drift")["spec"]["template"]["spec"]
    drift_claim = next(v for v in drift["volumes"] if v["name"] == "adapters")
    assert (
        claim["persistentVolumeClaim"]["claimName"]
        == drift_claim["persistentVolumeClaim"]["claimName"]
    )
    # The gateway lists every replica by its stable name.
    gateway = find(docs, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    upstreams = json.loads(_env(gateway)["DRIFTGATE_GATEWAY_UPSTREAMS"]["value"])
    assert len(upstreams) == sts["spec"]["replicas"]
    for i, url in enumerate(upstreams):
        assert url.startswith(f"http://{sts['metadata']['name']}-{i}.{sts['spec']['serviceName']}.")
    if name == "gpu-production":
        assert sts["spec"]["replicas"] == 3


@pytest.mark.parametrize("on", [True, False])
def test_answer_confidence_reaches_the_gateway(on: bool) -> None:
    values = {"gateway": {"answerConfidence": on}}
    docs = [d for d in yaml.safe_load_all(render(values)) if d]
    gateway = find(docs, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    value = _env(gateway)["DRIFTGATE_GATEWAY_ANSWER_CONFIDENCE"]["value"]
    assert GatewaySettings(answer_confidence=value).answer_confidence is on


def test_drift_service_may_create_only_jobs(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    _, _, docs = rendered
    role = find(docs, "Role", "-drift-jobs")
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        }
    ]
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    binding = find(docs, "RoleBinding", "-drift-jobs")
    drift = find(docs, "Deployment", "-drift")
    pod = drift["spec"]["template"]["spec"]
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    env = _env(pod["containers"][0])
    assert env["DRIFTGATE_DRIFT_TRIGGER_MODE"]["value"] == "kubernetes"
    assert env["DRIFTGATE_STATE_URL"]["valueFrom"]["secretKeyRef"]["key"]
    mounted = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert str(Path(env["DRIFTGATE_DRIFT_K8S_JOB_TEMPLATE"]["value"]).parent) in mounted


def test_only_the_gateway_and_the_retrain_gate_reach_vllm(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    _, _, docs = rendered
    policy = find(docs, "NetworkPolicy", "-vllm")
    sources = policy["spec"]["ingress"][0]["from"]
    pod_sources = [s["podSelector"]["matchLabels"] for s in sources if "podSelector" in s]
    selector = {"app.kubernetes.io/name": "driftgate", "app.kubernetes.io/instance": "dg"}
    assert pod_sources == [
        selector | {"app.kubernetes.io/component": "gateway"},
        selector | {"app.kubernetes.io/component": "retrain"},
    ]
    # The retrain gate's pods are the ones that selector admits, and nothing else is.
    job_pod = yaml.safe_load(find(docs, "ConfigMap", "-retrain-job")["data"]["job.yaml"])
    assert pod_sources[1].items() <= job_pod["spec"]["template"]["metadata"]["labels"].items()
    others = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    ]
    assert not [x for x in others if pod_sources[1].items() <= x.items()]
    ns_sources = [s for s in sources if "namespaceSelector" in s]
    assert len(ns_sources) == 1  # Prometheus only
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    gw_policy = find(docs, "NetworkPolicy", "-gateway")
    admin = {"driftgate.io/admin": "true"}
    assert any(
        s.get("podSelector", {}).get("matchLabels") == admin
        for s in gw_policy["spec"]["ingress"][0]["from"]
    )
    job = yaml.safe_load(find(docs, "ConfigMap", "-retrain-job")["data"]["job.yaml"])
    assert admin.items() <= job["spec"]["template"]["metadata"]["labels"].items()


LIMITS_ENV = "DRIFTGATE_GATEWAY_LIMITS_REDIS_URL"


def _gateway_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return _env(find(docs, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0])


def test_production_shares_limits_through_the_charts_redis() -> None:
    docs = manifests(load_values(PRODUCTION_VALUES))
    redis = find(docs, "Deployment", "-redis")
    service = find(docs, "Service", "-redis")
    port = service["spec"]["ports"][0]["port"]
    url = f"redis://{service['metadata']['name']}.{NAMESPACE}.svc:{port}/0"
    assert _gateway_env(docs)[LIMITS_ENV]["value"] == url
    container = redis["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "redis:7-alpine"
    assert "--save" in container["command"] and "--appendonly" in container["command"]
    policy = find(docs, "NetworkPolicy", "-redis")
    (rule,) = policy["spec"]["ingress"]
    assert [
        s["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for s in rule["from"]
    ] == ["gateway"]  # only the gateway reaches Redis


def test_limits_are_per_replica_without_redis_or_from_an_external_one() -> None:
    docs = manifests({})
    assert LIMITS_ENV not in _gateway_env(docs)
    assert not [d for d in docs if d["metadata"]["name"].endswith("-redis")]
    docs = manifests({"limits": {"existingSecret": "redis-url", "secretKey": "url"}})
    ref = _gateway_env(docs)[LIMITS_ENV]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "redis-url", "key": "url"}
    assert not [d for d in docs if d["metadata"]["name"].endswith("-redis")]


def test_ingress_publishes_only_the_openai_routes() -> None:
    docs = manifests(load_values(PRODUCTION_VALUES))
    ingress = find(docs, "Ingress", "-gateway")
    paths = [p["path"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert paths == ["/v1/"]
    assert not [d for d in manifests({}) if d["kind"] == "Ingress"]


def test_prometheus_rule_equals_grafana_alerts(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    name, _, docs = rendered
    chart_default = load_values(CHART / "values.yaml")["monitoring"]["runbookBaseUrl"]
    base = load_values(VALUE_SETS[name]).get("monitoring", {}).get("runbookBaseUrl", chart_default)
    groups: list[Any] = []
    for path in sorted(ALERTS.glob("*.yaml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    for group in groups:
        for rule in group["rules"]:
            if "annotations" in rule:  # alerts; recording rules have none
                rule["annotations"]["runbook_url"] = base + rule["annotations"]["runbook_url"]
    assert find(docs, "PrometheusRule")["spec"]["groups"] == groups


def test_runbook_base_url_may_be_empty_only_without_alert_rules() -> None:
    docs = manifests({"monitoring": {"prometheusRule": False, "runbookBaseUrl": ""}})
    assert not [d for d in docs if d["kind"] == "PrometheusRule"]


def test_runbook_urls_get_the_configured_base() -> None:
    base = "https://git.example.com/ml/driftgate/-/blob/main/"
    rule = find(manifests({"monitoring": {"runbookBaseUrl": base}}), "PrometheusRule")
    urls = [
        r["annotations"]["runbook_url"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    assert urls and all(u.startswith(base + "grafana/RUNBOOKS.md#") for u in urls)


def test_dashboard_configmaps_carry_the_dashboards(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    _, _, docs = rendered
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "-dashboard-" in d["metadata"]["name"]]
    assert len(maps) == len(list(DASHBOARDS.glob("*.json")))
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((file, text),) = cm["data"].items()
        assert json.loads(text) == json.loads((DASHBOARDS / file).read_text())


def test_monitoring_can_be_turned_off() -> None:
    docs = manifests(
        {
            "monitoring": {"serviceMonitors": False, "prometheusRule": False, "dashboards": False},
            "networkPolicy": {"enabled": False},
        }
    )
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy"}
    assert not [d for d in docs if "-dashboard-" in d["metadata"]["name"]]


def _key_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """env name -> (Secret, key) of each env entry taken from a Secret."""
    out = {}
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            out[e["name"]] = (ref["name"], ref["key"])
    return out


def test_service_credentials_come_from_one_secret(
    rendered: tuple[str, str, list[dict[str, Any]]],
) -> None:
    """vLLM runs with an API key that the gateway and the retrain job present; the drift
    service takes events and feedback only with the ingest key the gateway presents. The
    keys come from a Secret (random, created by the chart) and never appear in args."""
    _, text, docs = rendered
    secret = find(docs, "Secret", "-service-keys")
    name = secret["metadata"]["name"]
    assert set(secret["data"]) == {"ingest-key", "engine-api-key", "request-id-secret", "admin-key"}
    assert all(len(v) >= 40 for v in secret["data"].values())  # base64 of 40 random chars
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    def container(kind: str, suffix: str) -> dict[str, Any]:
        c: dict[str, Any] = find(docs, kind, suffix)["spec"]["template"]["spec"]["containers"][0]
        return c

    engine = _key_refs(container("StatefulSet", "-vllm"))
    gateway = _key_refs(container("Deployment", "-gateway"))
    drift = _key_refs(container("Deployment", "-drift"))
    job = yaml.safe_load(find(docs, "ConfigMap", "-retrain-job")["data"]["job.yaml"])
    retrain = _key_refs(job["spec"]["template"]["spec"]["containers"][0])
    assert engine["VLLM_API_KEY"] == (name, "engine-api-key")
    assert (
        gateway["DRIFTGATE_ENGINE_API_KEY"]
        == retrain["DRIFTGATE_ENGINE_API_KEY"]
        == (
            name,
            "engine-api-key",
        )
    )
    assert gateway["DRIFTGATE_INGEST_KEY"] == drift["DRIFTGATE_INGEST_KEY"] == (name, "ingest-key")
    assert "DRIFTGATE_ENGINE_API_KEY" not in drift  # the drift service never calls vLLM
    # the rollout controller presents the admin key the gateway checks: the operator's own
    # Secret where the values name one, else the generated one
    admin = gateway["DRIFTGATE_ADMIN_KEY"]
    assert drift["DRIFTGATE_ADMIN_KEY"] == admin
    assert admin in {(name, "admin-key"), ("driftgate-admin", "key")}, admin
    # every gateway replica signs request ids with the same secret (feedback ownership)
    assert gateway["DRIFTGATE_GATEWAY_REQUEST_ID_SECRET"] == (name, "request-id-secret")
    for value in secret["data"].values():
        assert value not in text.replace(f": {value}", "")  # only in the Secret itself


def test_an_existing_service_keys_secret_replaces_the_generated_one() -> None:
    docs = manifests({"serviceKeys": {"existingSecret": "prod-keys"}})
    assert not [
        d for d in docs if d["kind"] == "Secret" and "service-keys" in d["metadata"]["name"]
    ]
    gw = find(docs, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert _key_refs(gw)["DRIFTGATE_INGEST_KEY"] == ("prod-keys", "ingest-key")
