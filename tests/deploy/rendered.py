"""The rendered chart as the kubelet sees it: pods, Services, Secrets, ConfigMaps, policies.

Pure: it reads the manifests of ``helm template`` and answers what each pod would get
(its replicas, container, resolved environment, volumes); nothing starts here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


class PodConfigError(Exception):
    """What the kubelet reports as CreateContainerConfigError (a missing Secret key, ...)."""


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    selector: Mapping[str, str]
    #: Service port -> (target port as written: a number or a container port name).
    ports: Mapping[int, int | str]
    headless: bool
    publish_not_ready: bool


@dataclass(frozen=True)
class Pod:
    """One replica of a Deployment or StatefulSet."""

    name: str
    namespace: str
    workload: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    #: The StatefulSet's governing Service (pod DNS names ``<pod>.<service>``), if any.
    subdomain: str | None = None

    @property
    def container(self) -> Mapping[str, Any]:
        containers = self.spec["containers"]
        if len(containers) != 1:
            raise PodConfigError(f"{self.name}: the harness runs one container per pod")
        container: Mapping[str, Any] = containers[0]
        return container

    @property
    def named_ports(self) -> dict[str, int]:
        return {
            p["name"]: int(p["containerPort"])
            for p in self.container.get("ports", [])
            if "name" in p
        }

    @property
    def container_ports(self) -> list[int]:
        return [int(p["containerPort"]) for p in self.container.get("ports", [])]


@dataclass
class Rendered:
    """The manifests of one release, indexed the way the kubelet and kube-proxy read them."""

    namespace: str
    docs: list[Manifest]
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    policies: list[Manifest] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)

    @classmethod
    def from_manifests(
        cls,
        docs: list[Manifest],
        namespace: str,
        existing_secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Rendered:
        """``existing_secrets``: the Secrets an operator creates before installing (those
        the values name, e.g. ``state.existingSecret``), by name, decoded."""
        for doc in docs:
            doc["metadata"].setdefault("namespace", namespace)
        out = cls(namespace=namespace, docs=docs)
        out.secrets.update({k: dict(v) for k, v in (existing_secrets or {}).items()})
        for doc in docs:
            kind, name = doc["kind"], doc["metadata"]["name"]
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
                data.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
                out.secrets[name] = data
            elif kind == "ConfigMap":
                out.config_maps[name] = {k: str(v) for k, v in (doc.get("data") or {}).items()}
            elif kind == "Service":
                out.services[name] = _service(doc)
            elif kind == "NetworkPolicy":
                out.policies.append(doc)
        hpa_min = {
            d["spec"]["scaleTargetRef"]["name"]: int(d["spec"].get("minReplicas", 1))
            for d in docs
            if d["kind"] == "HorizontalPodAutoscaler"
        }
        for doc in docs:
            if doc["kind"] in ("Deployment", "StatefulSet"):
                out.pods.extend(_pods(doc, hpa_min.get(doc["metadata"]["name"])))
        return out

    def find_pods(self, selector: Mapping[str, str]) -> list[Pod]:
        return [p for p in self.pods if all(p.labels.get(k) == v for k, v in selector.items())]


def _service(doc: Manifest) -> Service:
    spec = doc["spec"]
    return Service(
        name=doc["metadata"]["name"],
        namespace=doc["metadata"]["namespace"],
        selector=dict(spec.get("selector") or {}),
        ports={int(p["port"]): p.get("targetPort", p["port"]) for p in spec["ports"]},
        headless=spec.get("clusterIP") == "None",
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
    )


def _pods(doc: Manifest, hpa_min_replicas: int | None) -> list[Pod]:
    """Replicas as the controllers make them: ``spec.replicas`` (1 when absent), raised to
    the HPA's ``minReplicas``; Deployment pods get a suffix, StatefulSet pods an ordinal."""
    name, ns = doc["metadata"]["name"], doc["metadata"]["namespace"]
    replicas = int(doc["spec"].get("replicas", 1))
    if hpa_min_replicas is not None:
        replicas = max(replicas, hpa_min_replicas)
    template = doc["spec"]["template"]
    labels = dict(template["metadata"].get("labels") or {})
    stateful = doc["kind"] == "StatefulSet"
    return [
        Pod(
            name=f"{name}-{i}" if stateful else f"{name}-pod{i}",
            namespace=ns,
            workload=f"{doc['kind']}/{name}",
            labels=labels,
            spec=template["spec"],
            subdomain=doc["spec"].get("serviceName") if stateful else None,
        )
        for i in range(replicas)
    ]


def _lookup(
    store: Mapping[str, Mapping[str, str]], kind: str, ref: Mapping[str, Any]
) -> str | None:
    source = store.get(ref["name"])
    if source is None or ref["key"] not in source:
        if ref.get("optional"):
            return None
        raise PodConfigError(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
    return source[ref["key"]]


def _field(pod: Pod, path: str) -> str:
    fields = {"metadata.namespace": pod.namespace, "metadata.name": pod.name}
    if path in fields:
        return fields[path]
    if path.startswith("metadata.labels['") and path.endswith("']"):
        return pod.labels.get(path[len("metadata.labels['") : -2], "")
    raise PodConfigError(f"fieldRef {path!r} is not modelled")


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` references to variables defined earlier; ``$$`` escapes."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            end = value.index(")", i)
            name = value[i + 2 : end]
            out.append(env.get(name, value[i : end + 1]))
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def resolve_env(pod: Pod, rendered: Rendered) -> dict[str, str]:
    """The container's environment as the kubelet builds it: ``envFrom`` first, then
    ``env`` in order (later entries win), values from Secrets, ConfigMaps and the pod's
    own fields. A missing non-optional reference raises :class:`PodConfigError`."""
    container = pod.container
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref, store, kind = source["configMapRef"], rendered.config_maps, "ConfigMap"
        else:
            ref, store, kind = source["secretRef"], rendered.secrets, "Secret"
        data = store.get(ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise PodConfigError(f"{kind} {ref['name']!r} not found")
        env.update({prefix + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = _expand(str(item["value"]), env)
            continue
        source = item.get("valueFrom")
        if source is None:
            env[name] = ""
            continue
        value: str | None
        if "secretKeyRef" in source:
            value = _lookup(rendered.secrets, "Secret", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _lookup(rendered.config_maps, "ConfigMap", source["configMapKeyRef"])
        elif "fieldRef" in source:
            value = _field(pod, source["fieldRef"]["fieldPath"])
        else:
            raise PodConfigError(f"{pod.name}: env {name} uses an unmodelled source {source}")
        if value is not None:
            env[name] = value
    return env
