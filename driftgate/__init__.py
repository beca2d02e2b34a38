"""driftgate: serving stack for fine-tuned LLMs that stay good in production."""

__version__ = "0.1.0"
