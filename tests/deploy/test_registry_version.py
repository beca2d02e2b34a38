"""A registry version on the shared volume, as the harness lays it out (nothing starts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.core.lora_check import check_lora_dir
from tests.deploy.cluster import LocalCluster
from tests.deploy.lora import write_zero_lora
from tests.deploy.release import local_images, render_release

VERSION = "/var/lib/driftgate/registry/support/1"


def test_gateway_and_vllm_see_one_registry_and_a_zero_lora_passes_the_gateways_check(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(
        '{"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,'
        ' "num_hidden_layers": 2}'
    )
    cluster = LocalCluster(render_release(), tmp_path / "cluster", local_images(model_dir))
    try:
        on_gateway = cluster.host_path("dg-driftgate-gateway-pod0", VERSION)
        assert cluster.host_path("dg-driftgate-vllm-0", VERSION) == on_gateway
        with pytest.raises(KeyError, match="on no volume"):
            cluster.host_path("dg-driftgate-vllm-0", "/opt/elsewhere")
    finally:
        cluster.proxy.close()
    write_zero_lora(on_gateway, model_dir, "/var/lib/driftgate/models/base")
    info = check_lora_dir(on_gateway, max_rank=16, base_names=["base"])
    assert (info.rank, info.target_modules) == (8, ("q_proj", "v_proj"))
