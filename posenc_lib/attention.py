"""Multi-head self-attention with a pluggable positional scheme, and a KV cache.

One layer serves every chapter: the positional scheme is a single argument.

- ``"none"``, ``"sinusoidal"``, ``"learned"``: plain attention. The absolute schemes add
  their table to the token embeddings (in :class:`~posenc_lib.model.TinyTransformer`),
  so attention itself sees no positions.
- ``"rope"``: queries and keys are rotated (:class:`~posenc_lib.rope.RotaryEmbedding`).
- ``"alibi"``, ``"t5"``: an additive bias ``B`` on the logits,
  ``softmax(Q K^T / sqrt(d_k) + B) V``.
- ``"shaw"``: learned relative embeddings for keys and values (Shaw et al., 2018),
  whose logit term depends on the query content.

Layout: tokens ``(batch, seq, d_model)``; heads ``(batch, heads, seq, head_dim)``.
With a cache, the new queries sit at positions ``cache.length .. cache.length + seq - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_choice, check_int, check_tensor
from .alibi import alibi_bias
from .relative import ShawRelativePosition
from .rope import RotaryEmbedding
from .t5 import T5RelativePositionBias

__all__ = [
    "POSITION_SCHEMES",
    "LayerKVCache",
    "MultiHeadAttention",
    "attention_bias",
    "attention_weights",
    "causal_mask",
]

#: Every positional scheme the attention layer and the small Transformer accept.
POSITION_SCHEMES = ("none", "sinusoidal", "learned", "shaw", "t5", "alibi", "rope")


@dataclass
class LayerKVCache:
    """Keys and values seen so far by one attention layer, ``(batch, heads, length, head_dim)``.

    RoPE keys are stored already rotated, so a cached key never needs rotating again.
    The next query's position is ``length``, which the positional schemes use as their
    ``offset``.
    """

    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new keys and values; return all keys and values so far."""
        if self.keys is not None and (
            k.shape[:2] != self.keys.shape[:2] or k.shape[-1] != self.keys.shape[-1]
        ):
            raise ValueError(
                "new keys must match the cached (batch, heads, *, head_dim) = "
                f"{tuple(self.keys.shape)}, got {tuple(k.shape)}"
            )
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat((self.keys, k), dim=-2)
            self.values = torch.cat((self.values, v), dim=-2)
        return self.keys, self.values


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


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention whose positional scheme is one argument.

    ``y = softmax(Q K^T / sqrt(d_k) + B + M) V W_O`` with ``Q, K, V = x W_Q, x W_K, x W_V``
    split into heads, ``B`` the scheme's bias and ``M`` the causal mask (Vaswani et al.,
    2017). See the module docstring for the schemes.

    Args:
        d_model: width of the token vectors; must be divisible by ``num_heads``.
        num_heads: number of heads.
        position: one of :data:`POSITION_SCHEMES`.
        causal: mask future keys (decoder). The T5 buckets are bidirectional when False.
        rope_base, rope_scaling, rope_layout: options of
            :class:`~posenc_lib.rope.RotaryEmbedding`.
        shaw_max_distance: clipping distance ``k`` of Shaw et al.
        t5_num_buckets, t5_max_distance: options of
            :class:`~posenc_lib.t5.T5RelativePositionBias`.
        dropout: dropout on the attention weights during training.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        position: str = "none",
        causal: bool = True,
        rope_base: float = 10_000.0,
        rope_scaling: dict | None = None,
        rope_layout: str = "half",
        shaw_max_distance: int = 16,
        t5_num_buckets: int = 32,
        t5_max_distance: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        check_int("num_heads", num_heads, minimum=1)
        if d_model % num_heads:
            raise ValueError(
                f"d_model must be divisible by num_heads, got d_model={d_model}, num_heads={num_heads}"
            )
        self.position = check_choice("position", position, POSITION_SCHEMES)
        self.d_model, self.num_heads, self.causal = d_model, num_heads, causal
        self.head_dim = d_model // num_heads
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        if position == "rope":
            check_int("head_dim (d_model // num_heads)", self.head_dim, minimum=2, even=True)
            self.rotary = RotaryEmbedding(
                self.head_dim, base=rope_base, scaling=rope_scaling, layout=rope_layout
            )
        elif position == "t5":
            self.t5 = T5RelativePositionBias(
                num_heads,
                num_buckets=t5_num_buckets,
                max_distance=t5_max_distance,
                bidirectional=not causal,
            )
        elif position == "shaw":
            self.shaw = ShawRelativePosition(self.head_dim, max_distance=shaw_max_distance)

    def _bias(self, q_len: int, k_len: int, offset: int, like: torch.Tensor):
        """Additive ``(heads, q_len, k_len)`` bias including the causal mask, or None."""
        if self.position == "alibi":
            return alibi_bias(
                self.num_heads,
                q_len,
                k_len,
                causal=self.causal,
                offset=offset,
                device=like.device,
                dtype=like.dtype,
            )
        bias = (
            self.t5(q_len, k_len, offset=offset).to(like.dtype) if self.position == "t5" else None
        )
        if self.causal and (bias is not None or q_len != k_len or offset):
            mask = causal_mask(q_len, k_len, offset=offset, device=like.device)
            blocked = torch.zeros(mask.shape, dtype=like.dtype, device=like.device)
            blocked = blocked.masked_fill(~mask, float("-inf"))
            bias = blocked if bias is None else bias + blocked
        return bias

    def forward(self, x: torch.Tensor, *, kv_cache: LayerKVCache | None = None) -> torch.Tensor:
        """Attend over ``x`` ``(batch, seq, d_model)``; returns the same shape.

        With ``kv_cache`` the tokens of ``x`` continue the cached ones: their positions are
        ``kv_cache.length .. kv_cache.length + seq - 1``, they attend to the cached keys
        too, and their keys and values are appended to the cache in place.
        """
        check_tensor("x", x, ndim=3, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x.shape[-1] must be d_model={self.d_model}, got {x.shape[-1]}")
        batch, seq, _ = x.shape
        offset = kv_cache.length if kv_cache is not None else 0
        # (batch, seq, 3 * d_model) -> 3 x (batch, heads, seq, head_dim)
        q, k, v = (
            self.qkv(x).view(batch, seq, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        if self.position == "rope":
            q, k = self.rotary(q, k, offset=offset)
        if kv_cache is not None:  # k, v: (batch, heads, offset + seq, head_dim)
            k, v = kv_cache.append(k, v)
        k_len = k.shape[-2]
        p_drop = self.dropout if self.training else 0.0
        if self.position == "shaw":
            y = self._shaw_attention(q, k, v, offset, p_drop)
        else:
            bias = self._bias(seq, k_len, offset, q)
            plain_causal = self.causal and bias is None
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=p_drop, is_causal=plain_causal
            )
        # (batch, heads, seq, head_dim) -> (batch, seq, d_model)
        return self.out(y.transpose(1, 2).reshape(batch, seq, self.d_model))

    def _shaw_attention(self, q, k, v, offset: int, p_drop: float) -> torch.Tensor:
        q_len, k_len = q.shape[-2], k.shape[-2]
        scores = q @ k.transpose(-2, -1) + self.shaw.key_bias(q, q_len, k_len, offset=offset)
        scores = scores / math.sqrt(self.head_dim)
        if self.causal:
            mask = causal_mask(q_len, k_len, offset=offset, device=q.device)
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = F.dropout(scores.softmax(dim=-1), p=p_drop)
        return weights @ v + self.shaw.value_term(weights, q_len, k_len, offset=offset)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, num_heads={self.num_heads}, position={self.position!r}, "
            f"causal={self.causal}"
        )
