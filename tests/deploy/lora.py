"""A LoRA adapter that changes nothing, written without training: PEFT's layout, B = 0.

It stands in for what the retrain job would write to the shared registry, so the
harness can register a version through the gateway and have every vLLM pod load it from
the shared volume in seconds. Its answers are the base model's (the update B·A is zero).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def write_zero_lora(target: Path, model_dir: Path, base_model: str, rank: int = 8) -> Path:
    """A rank-``rank`` adapter on ``q_proj`` and ``v_proj`` of the model in ``model_dir``."""
    config = json.loads((model_dir / "config.json").read_text())
    hidden = int(config["hidden_size"])
    head_dim = hidden // int(config["num_attention_heads"])
    kv_out = head_dim * int(config.get("num_key_value_heads", config["num_attention_heads"]))
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(int(config["num_hidden_layers"])):
        for module, out in (("q_proj", hidden), ("v_proj", kv_out)):
            key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{key}.lora_A.weight"] = rng.normal(0, 0.02, (rank, hidden)).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = np.zeros((out, rank), dtype=np.float32)
    target.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target / "adapter_model.safetensors"))
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "use_dora": False,
        "use_rslora": False,
        "inference_mode": True,
    }
    (target / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
    return target
