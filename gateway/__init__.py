"""driftgate gateway: OpenAI-compatible multi-LoRA front of one or more vLLM replicas."""
