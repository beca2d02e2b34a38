"""The retrain Job the drift service creates, planned as the harness plans the pods.

Nothing starts (the Jobs API stand-in and the run belong to the loop through the
harness); what a Job pod would get is checked here: the manifest the drift service posts
(``render_job`` on the rendered ConfigMap) validates, its environment resolves from the
rendered Secrets, every cluster name in it is a Service of the release, and the
NetworkPolicies admit each connection it is wired to make.
"""

from __future__ import annotations

from pathlib import Path

from drift.trigger import render_job
from tests.deploy.dns import Target, dns_table
from tests.deploy.launch import plan_launch
from tests.deploy.policy import Endpoint, evaluate
from tests.deploy.release import local_images, render_release
from tests.deploy.rendered import Pod
from tests.deploy.volumes import plan_mounts
from tests.sre.chart_render import KUBE_VERSION


def test_the_retrain_job_is_wired_to_the_release_and_allowed_by_its_policies(
    tmp_path: Path,
) -> None:
    import kubernetes_validate

    rendered = render_release()
    template = rendered.config_maps["dg-driftgate-retrain-job"]["job.yaml"]
    job = render_job(template, "support", 2, "drift confirmed")
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    pod_template = job["spec"]["template"]
    pod = Pod(
        f"{job['metadata']['name']}-pod",
        rendered.namespace,
        f"Job/{job['metadata']['name']}",
        pod_template["metadata"]["labels"],
        pod_template["spec"],
    )
    subdomains = {p.subdomain: [p.name] for p in rendered.pods if p.subdomain}
    dns = dns_table(rendered.namespace, rendered.services, subdomains)

    def route_for(caller: Pod, target: Target, port: int) -> str:
        return f"127.0.0.1:{port}"

    mounts = plan_mounts(pod, rendered, tmp_path)
    plan = plan_launch(pod, rendered, mounts, {}, dns, route_for, local_images(tmp_path))
    assert plan.argv[:4] == ["python", "-m", "retrain", "run"]
    assert (
        plan.env["DRIFTGATE_ENGINE_API_KEY"]
        == (rendered.secrets["dg-driftgate-service-keys"]["engine-api-key"])
    )
    assert not any(m.read_only for m in mounts if m.mount_path == "/var/lib/driftgate")

    job_pod = Endpoint(pod.name, pod.namespace, pod.labels)
    wired = sorted(set(plan.wired), key=str)
    assert (Target("dg-driftgate-vllm-headless", "dg-driftgate-vllm-0"), 8000) in wired
    for target, port in wired:
        service = rendered.services[target.service]
        backends = [
            p
            for p in rendered.find_pods(service.selector)
            if target.pod is None or p.name == target.pod
        ]
        assert backends, f"{target} selects no pod"
        for backend in backends:
            dest = Endpoint(backend.name, backend.namespace, backend.labels, backend.named_ports)
            number = service.ports[port]
            container_port = backend.named_ports[number] if isinstance(number, str) else number
            verdict = evaluate(rendered.policies, job_pod, dest, container_port)
            assert verdict.allowed, f"retrain -> {backend.name}:{container_port}: {verdict.reason}"
