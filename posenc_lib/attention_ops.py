"""Attention as functions: the causal mask, the attention weights, each scheme's bias
matrix, and the padding mask of a batch of sequences of different lengths.

:class:`~posenc_lib.attention.MultiHeadAttention` is built from these; they are also the
simplest way to draw every scheme's effect on the logits side by side.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import check_bool, check_choice, check_int, check_tensor
from .alibi import alibi_bias
from .t5 import T5RelativePositionBias

__all__ = ["POSITION_SCHEMES", "attention_bias", "attention_weights", "causal_mask"]

#: Every positional scheme the attention layer and the small Transformer accept.
POSITION_SCHEMES = ("none", "sinusoidal", "learned", "shaw", "t5", "alibi", "rope")


def causal_mask(q_len: int, k_len: int, *, offset: int | None = None, device=None) -> torch.Tensor:
    """Boolean ``(q_len, k_len)`` mask, True where query ``i`` may see key ``j``: ``j <= i + offset``.

    ``offset`` is the position of the first query; by default ``k_len - q_len`` (the
    queries are the last ``q_len`` of ``k_len`` tokens, as with a KV cache).

    Returns:
        bool tensor of shape ``(q_len, k_len)``.
    """
    check_int("q_len", q_len, minimum=0)
    check_int("k_len", k_len, minimum=0)
    offset = k_len - q_len if offset is None else check_int("offset", offset)
    i = torch.arange(q_len, device=device)[:, None] + offset
    j = torch.arange(k_len, device=device)[None, :]
    return j <= i


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, *, bias: torch.Tensor | None = None, causal: bool = False
) -> torch.Tensor:
    """Attention probabilities ``softmax(q k^T / sqrt(d_k) + B)``, optionally causal.

    Args:
        q: ``(..., q_len, d_k)`` queries; k: ``(..., k_len, d_k)`` keys.
        bias: additive bias broadcastable to ``(..., q_len, k_len)`` (may hold ``-inf``).
        causal: mask keys after each query (queries are the last ``q_len`` positions).

    Returns:
        ``(..., q_len, k_len)`` weights whose rows sum to 1.
    """
    check_tensor("q", q, min_ndim=2, floating=True)
    check_tensor("k", k, min_ndim=2, floating=True)
    causal = check_bool("causal", causal)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must share the last dimension, got {q.shape[-1]} and {k.shape[-1]}"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    if causal:
        mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def attention_bias(
    scheme: str,
    num_heads: int,
    q_len: int,
    k_len: int | None = None,
    *,
    offset: int = 0,
    causal: bool = False,
    module: nn.Module | None = None,
    q: torch.Tensor | None = None,
    device=None,
) -> torch.Tensor:
    """The additive logit bias ``B`` of a scheme, ``(num_heads, q_len, k_len)``: one way to
    draw every method side by side.

    - ``"none"``, ``"sinusoidal"``, ``"learned"``, ``"rope"``: zeros (no bias; RoPE acts
      by rotating q and k instead).
    - ``"alibi"``: ``-m_h (i - j)``; with ``causal=False`` the symmetric ``-m_h |i - j|``.
    - ``"t5"``: the learned scalar of each head and distance bucket, from ``module`` (a
      :class:`~posenc_lib.t5.T5RelativePositionBias`; a freshly initialised one if None).
    - ``"shaw"``: content-dependent, ``q_i . a^K_{clip(j-i)} / sqrt(d_k)`` for the queries
      ``q`` ``(heads, q_len, head_dim)`` and ``module`` (a
      :class:`~posenc_lib.relative.ShawRelativePosition`); both are required.

    With ``causal=True`` entries for keys after the query are ``-inf``.
    ``offset`` is the position of the first query (relative position = key minus query).
    """
    check_choice("scheme", scheme, POSITION_SCHEMES)
    check_int("num_heads", num_heads, minimum=1)
    causal = check_bool("causal", causal)
    k_len = q_len if k_len is None else k_len
    if scheme == "alibi":
        bias = alibi_bias(num_heads, q_len, k_len, causal=causal, offset=offset, device=device)
        return bias
    if scheme == "t5":
        module = (
            module
            if module is not None
            else T5RelativePositionBias(num_heads, bidirectional=not causal)
        )
        bias = module(q_len, k_len, offset=offset).detach().to(device)
    elif scheme == "shaw":
        if module is None or q is None:
            raise ValueError("scheme='shaw' depends on the queries: pass q and module")
        check_tensor("q", q, ndim=3, floating=True)
        bias = module.key_bias(q[None], q_len, k_len, offset=offset)[0].detach()
        bias = bias / math.sqrt(q.shape[-1])
    else:
        bias = torch.zeros(num_heads, q_len, k_len, device=device)
    if causal:
        allowed = causal_mask(q_len, k_len, offset=offset, device=bias.device)
        bias = bias.masked_fill(~allowed, float("-inf"))
    return bias


def _padding_mask(attention_mask, batch: int, k_len: int, device):
    """``(batch, 1, 1, k_len)`` bool, True for real keys; None without a mask."""
    if attention_mask is None:
        return None
    check_tensor("attention_mask", attention_mask, ndim=2)
    if attention_mask.shape != (batch, k_len):
        raise ValueError(
            f"attention_mask must be (batch, k_len) = {(batch, k_len)} over the cached and "
            f"new keys, got shape {tuple(attention_mask.shape)}"
        )
    if attention_mask.is_floating_point() or attention_mask.is_complex():
        raise TypeError(
            f"attention_mask must be bool or integer (1 = token, 0 = padding), got "
            f"{attention_mask.dtype}"
        )
    if attention_mask.dtype != torch.bool and not torch.compiler.is_compiling():
        if ((attention_mask != 0) & (attention_mask != 1)).any():
            raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    return attention_mask.to(device=device, dtype=torch.bool)[:, None, None, :]


def _join_padding(bias, keep, q_len: int, k_len: int, offset: int, causal: bool, like):
    """Add the padding mask to ``bias``; also return the rows that see no key at all.

    Such rows (queries on left padding) would be all ``-inf``, and softmax would give nan:
    they are opened to every key here and their output is zeroed by the caller.
    """
    allowed = keep
    if causal:
        allowed = allowed & causal_mask(q_len, k_len, offset=offset, device=like.device)
    dead = ~allowed.any(-1, keepdim=True)  # (batch, 1 or heads, q_len, 1)
    blocked = torch.zeros(allowed.shape, dtype=like.dtype, device=like.device)
    blocked = blocked.masked_fill(~allowed, float("-inf"))
    bias = blocked if bias is None else bias + blocked
    return bias.masked_fill(dead, 0.0), dead
