"""Run a batch's common token prefix through the decoder once, not once per example.

Every example of one adapter starts with the same rendered system prompt (in the demo, 33
of about 55 tokens). The prefix is run once with gradients, its keys and values repeated
over the batch, and only each example's rest is run per row: the same causal attention,
so the same loss and gradients as the padded batch (tests/retrain/test_shared_prefix.py),
for fewer token positions through every layer. The prefix stops before the last prompt
token, so every position that predicts a completion token is in the per-row part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retrain.encoding import EncodedExample

if TYPE_CHECKING:
    import torch


def shared_prefix_len(batch: Sequence[EncodedExample]) -> int:
    """Length of the token prefix every example shares, ending before any example's last
    prompt token.

    >>> a = EncodedExample(input_ids=(1, 2, 3, 4, 9), n_prompt=4, weight=1.0)
    >>> b = EncodedExample(input_ids=(1, 2, 3, 5, 6, 9), n_prompt=5, weight=1.0)
    >>> shared_prefix_len([a, b])
    3
    >>> shared_prefix_len([a])
    3
    >>> shared_prefix_len([a, EncodedExample(input_ids=(7, 9), n_prompt=1, weight=1.0)])
    0
    """
    if not batch:
        return 0
    first = batch[0].input_ids
    limit = min(e.n_prompt for e in batch) - 1
    for e in batch[1:]:
        n = 0
        while n < limit and e.input_ids[n] == first[n]:
            n += 1
        limit = n
    return max(0, limit)


def shared_prefix_hidden(
    causal_lm: Any,
    batch: Sequence[EncodedExample],
    prefix: int,
    pad_token_id: int,
    dev: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states, token ids) of each example after the ``prefix`` shared tokens,
    right-padded to the longest rest: shapes ``(batch, width, hidden)`` and
    ``(batch, width)``. Position ``j`` of a row is position ``prefix + j`` of its example."""
    import torch

    decoder = causal_lm.get_decoder()
    n_rows = len(batch)
    width = max(len(e.input_ids) for e in batch) - prefix
    ids = torch.full((n_rows, width), pad_token_id, dtype=torch.long)
    attn = torch.zeros((n_rows, prefix + width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids) - prefix
        ids[i, :n] = torch.tensor(e.input_ids[prefix:], dtype=torch.long)
        attn[i, : prefix + n] = 1
    ids, attn = ids.to(dev), attn.to(dev)
    head = torch.tensor([batch[0].input_ids[:prefix]], dtype=torch.long, device=dev)
    cache = decoder(input_ids=head, use_cache=True).past_key_values
    cache.batch_repeat_interleave(n_rows)  # differentiable: gradients reach the prefix run
    positions = torch.arange(prefix, prefix + width, device=dev).unsqueeze(0).expand(n_rows, -1)
    hidden = decoder(
        input_ids=ids,
        attention_mask=attn,
        past_key_values=cache,
        position_ids=positions,
        use_cache=True,
    )[0]
    return hidden, ids
