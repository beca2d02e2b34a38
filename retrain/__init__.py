"""The retrain job: curate a dataset from logged traffic, train a LoRA version with PEFT,
gate it on a task metric against the version now serving, register it, hand it off.

Run as ``python -m retrain run --adapter NAME``. Nothing happens at import: the heavy
stack (torch, transformers, peft) is imported only by the modules that train.
"""
