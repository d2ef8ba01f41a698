"""FlexAttention ``score_mod`` callables for the relative position biases.

Each returns ``score_mod(score, b, h, q_idx, kv_idx)``, which FlexAttention
(``torch.nn.attention.flex_attention``) calls for every logit inside its kernel, so the
bias of ``(h, kv_idx - q_idx)`` is never stored as a ``(q_len, kv_len)`` tensor. Query row
``r`` sits at position ``r + offset``; :func:`posenc_lib.flex_bias.attention_with_bias`
passes ``offset = kv_len - q_len`` by default (queries are the last tokens, as in decoding).
"""

from __future__ import annotations

import torch

from ._validation import check_bool, check_int, check_tensor
from .t5 import t5_relative_position_bucket

__all__ = ["alibi_score_mod", "t5_score_mod", "shaw_score_mod"]


def alibi_score_mod(slopes: torch.Tensor, *, causal: bool = True, offset: int = 0):
    """``score_mod`` adding ALiBi's bias, as :func:`posenc_lib.alibi.alibi_bias` does.

    Query row ``r`` sits at position ``i = r + offset``, key column ``j`` at ``j``.

    Args:
        slopes: ``(heads,)`` slopes ``m_h`` (e.g. :func:`posenc_lib.alibi.alibi_slopes`);
            one per head of the queries it is used with.
        causal: ``score - m_h (i - j)``, to be paired with a causal mask (a FlexAttention
            ``block_mask``, as :func:`~posenc_lib.flex_bias.attention_with_bias` does, which also skips the fully
            masked blocks); ``False``: ``score - m_h |i - j|``, no mask.
        offset: position of the first query (``kv_len - q_len`` when the queries are the
            last tokens, as in decoding); default 0.

    The mask is kept out of the ``score_mod`` on purpose: a ``torch.where(..., -inf)`` here
    is slower (no block skipping) and, with torch 2.13, breaks Inductor's C++ (CPU) code
    generation for FlexAttention.
    """
    check_tensor("slopes", slopes, ndim=1, floating=True)
    causal = check_bool("causal", causal)
    offset = check_int("offset", offset)

    def score_mod(score, b, h, q_idx, kv_idx):
        rel = kv_idx - q_idx - offset
        if not causal:
            return score - slopes[h] * torch.abs(rel)
        return score + slopes[h] * rel

    return score_mod


def _t5_offset_table(
    bias_table, q_len, kv_len, *, bidirectional, num_buckets, max_distance, offset=0
):
    """``(q_len + kv_len - 1, heads)``: row ``c - r + q_len - 1`` holds the T5 bias of
    query row ``r`` and key ``c``, whose relative position is ``c - (r + offset)``."""
    rel = torch.arange(-(q_len - 1), kv_len, device=bias_table.device) - offset
    buckets = t5_relative_position_bucket(
        rel, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    )
    return bias_table[buckets]


def t5_score_mod(
    bias_table: torch.Tensor,
    *,
    q_len: int,
    kv_len: int,
    bidirectional: bool = True,
    num_buckets: int | None = None,
    max_distance: int = 128,
    offset: int = 0,
):
    """``score_mod`` adding T5's bucketed bias ``B[bucket(j - i), h]``.

    Args:
        bias_table: ``(num_buckets, heads)`` learned bias (T5's ``relative_attention_bias``
            weight). Treated as data: gradients do not reach it through this path.
        q_len, kv_len: sequence lengths the returned function will be used with.
        bidirectional, num_buckets, max_distance: as in
            :func:`posenc_lib.t5.t5_relative_position_bucket` (``num_buckets`` defaults to
            ``bias_table.shape[0]``).
        offset: position of the first query (query row ``r`` sits at ``r + offset``).
    """
    check_tensor("bias_table", bias_table, ndim=2, floating=True)
    check_int("q_len", q_len, minimum=1)
    check_int("kv_len", kv_len, minimum=1)
    offset = check_int("offset", offset)
    bidirectional = check_bool("bidirectional", bidirectional)
    num_buckets = bias_table.shape[0] if num_buckets is None else num_buckets
    table = _t5_offset_table(
        bias_table.detach(),
        q_len,
        kv_len,
        bidirectional=bidirectional,
        num_buckets=num_buckets,
        max_distance=max_distance,
        offset=offset,
    )
    first = q_len - 1  # row of table for kv_idx - q_idx = 0

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + table[kv_idx - q_idx + first, h]

    return score_mod


def _shaw_q_rel(q, rel_table):
    return torch.einsum("bhsd,rd->bhsr", q, rel_table)


def shaw_score_mod(q: torch.Tensor, rel_table: torch.Tensor, *, scale: float, offset: int = 0):
    """``score_mod`` adding Shaw et al.'s key-side term ``scale * q_i . a_clip(j - i)``.

    Args:
        q: ``(batch, heads, q_len, head_dim)`` queries (the same passed to attention).
        rel_table: ``(2K + 1, head_dim)`` embeddings ``a_{-K} .. a_{K}`` (row ``K`` is offset 0).
        scale: the attention scale (``1 / sqrt(head_dim)`` by default in attention).
        offset: position of the first query (query row ``r`` sits at ``r + offset``).
    """
    check_tensor("q", q, ndim=4, floating=True)
    offset = check_int("offset", offset)
    check_tensor("rel_table", rel_table, ndim=2, floating=True)
    if rel_table.shape[0] % 2 == 0 or rel_table.shape[1] != q.shape[-1]:
        raise ValueError(
            "rel_table must have shape (2K + 1, head_dim), got "
            f"{tuple(rel_table.shape)} for head_dim {q.shape[-1]}"
        )
    k_max = rel_table.shape[0] // 2
    q_rel = _shaw_q_rel(q, rel_table) * scale

    def score_mod(score, b, h, q_idx, kv_idx):
        idx = torch.clamp(kv_idx - q_idx - offset, -k_max, k_max) + k_max
        return score + q_rel[b, h, q_idx, idx]

    return score_mod
