"""Multi-head self-attention with a pluggable positional scheme, and a KV cache.

One layer serves every chapter: the positional scheme is a single argument.

- ``"none"``, ``"sinusoidal"``, ``"learned"``: plain attention. The absolute schemes add
  their table to the token embeddings (in :class:`~posenc_lib.model.TinyTransformer`),
  so attention itself sees no positions.
- ``"rope"``: queries and keys are rotated (:class:`~posenc_lib.rope_module.RotaryEmbedding`).
- ``"alibi"``, ``"t5"``: an additive bias ``B`` on the logits,
  ``softmax(Q K^T / sqrt(d_k) + B) V``.
- ``"shaw"``: learned relative embeddings for keys and values (Shaw et al., 2018),
  whose logit term depends on the query content.

Layout: tokens ``(batch, seq, d_model)``; heads ``(batch, heads, seq, head_dim)``.
With a cache, the new queries sit at positions ``cache.length .. cache.length + seq - 1``.
The functional pieces (:func:`causal_mask`, :func:`attention_weights`,
:func:`attention_bias`) live in ``posenc_lib.attention_ops`` and are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_bool, check_choice, check_int, check_tensor
from .alibi import alibi_bias
from .attention_ops import (
    POSITION_SCHEMES,
    _join_padding,
    _padding_mask,
    attention_bias,
    attention_weights,
    causal_mask,
)
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


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention whose positional scheme is one argument.

    ``y = softmax(Q K^T / sqrt(d_k) + B + M) V W_O`` with ``Q, K, V = x W_Q, x W_K, x W_V``
    split into heads, ``B`` the scheme's bias and ``M`` the causal and padding masks
    (Vaswani et al., 2017). See the module docstring for the schemes.

    Args:
        d_model: width of the token vectors; must be divisible by ``num_heads``.
        num_heads: number of query heads.
        position: one of :data:`~posenc_lib.attention_ops.POSITION_SCHEMES`.
        causal: mask future keys (decoder), a bool. The T5 buckets are bidirectional when
            False.
        num_kv_heads: number of key/value heads (grouped-query attention, Ainslie et al.,
            2023): query head ``h`` uses key/value head ``h // (num_heads // num_kv_heads)``,
            as in Hugging Face's ``repeat_kv``. Must divide ``num_heads``; default
            ``num_heads`` (plain multi-head attention; 1 is multi-query attention). The KV
            cache stores only ``num_kv_heads`` heads. ALiBi slopes and T5 columns stay one
            per *query* head.
        rope_base, rope_scaling, rope_layout: options of
            :class:`~posenc_lib.rope_module.RotaryEmbedding`. The rotation goes through
            :func:`~posenc_lib.rope_triton.apply_rope_fast` (the fused Triton kernel on a
            GPU, :func:`~posenc_lib.rope.apply_rope` elsewhere).
        shaw_max_distance: clipping distance ``k`` of Shaw et al.
        t5_num_buckets, t5_max_distance: options of
            :class:`~posenc_lib.t5.T5RelativePositionBias`.
        t5_bias: a :class:`~posenc_lib.t5.T5RelativePositionBias` to use instead of a new
            one, so several layers can share one table, as T5 does (see
            :class:`~posenc_lib.t5.T5RelativePositionBias`). Its ``num_heads`` must equal
            ``num_heads``; with it, ``t5_num_buckets`` and ``t5_max_distance`` are unused.
        t5_scale_logits: divide ``Q K^T`` by ``sqrt(d_k)`` with ``position="t5"`` (default
            True, this library's convention). T5 itself does not: with False the logits are
            ``Q K^T + B`` as in T5 and Hugging Face's ``T5Attention``, which fold the scale
            into the initialisation of ``W_Q``.
        dropout: dropout on the attention weights during training.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        position: str = "none",
        causal: bool = True,
        num_kv_heads: int | None = None,
        rope_base: float = 10_000.0,
        rope_scaling: dict | None = None,
        rope_layout: str = "half",
        shaw_max_distance: int = 16,
        t5_num_buckets: int = 32,
        t5_max_distance: int = 128,
        t5_bias: T5RelativePositionBias | None = None,
        t5_scale_logits: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        d_model = check_int("d_model", d_model, minimum=1)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        if d_model % num_heads:
            raise ValueError(
                f"d_model must be divisible by num_heads, got d_model={d_model}, num_heads={num_heads}"
            )
        kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        kv_heads = check_int("num_kv_heads", kv_heads, minimum=1)
        if num_heads % kv_heads:
            raise ValueError(
                f"num_kv_heads must divide num_heads={num_heads}, got num_kv_heads={kv_heads}"
            )
        self.position = check_choice("position", position, POSITION_SCHEMES)
        self.causal = check_bool("causal", causal)
        self.t5_scale_logits = check_bool("t5_scale_logits", t5_scale_logits)
        self.d_model, self.num_heads, self.num_kv_heads = d_model, num_heads, kv_heads
        self.head_dim = d_model // num_heads
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = dropout
        # one projection: [q (num_heads) | k (num_kv_heads) | v (num_kv_heads)] * head_dim
        self.qkv = nn.Linear(d_model, d_model + 2 * kv_heads * self.head_dim, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        if position == "rope":
            check_int("head_dim (d_model // num_heads)", self.head_dim, minimum=2, even=True)
            self.rotary = RotaryEmbedding(
                self.head_dim, base=rope_base, scaling=rope_scaling, layout=rope_layout
            )
        elif position == "t5":
            self.t5 = t5_bias if t5_bias is not None else T5RelativePositionBias(
                num_heads,
                num_buckets=t5_num_buckets,
                max_distance=t5_max_distance,
                bidirectional=not causal,
            )  # fmt: skip
            _check_shared_t5(self.t5, num_heads, self.causal)
        elif position == "shaw":
            self.shaw = ShawRelativePosition(self.head_dim, max_distance=shaw_max_distance)
        if t5_bias is not None and position != "t5":
            raise ValueError(f"t5_bias needs position='t5', got position={position!r}")

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

    def forward(
        self,
        x: torch.Tensor,
        *,
        kv_cache: LayerKVCache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend over ``x`` ``(batch, seq, d_model)``; returns the same shape.

        With ``kv_cache`` the tokens of ``x`` continue the cached ones: their positions are
        ``kv_cache.length .. kv_cache.length + seq - 1``, they attend to the cached keys
        too, and their keys and values are appended to the cache in place.

        Args:
            attention_mask: ``(batch, k_len)`` bool or 0/1 tensor over *all* keys (cached
                and new, ``k_len = kv_cache.length + seq``), True/1 for real tokens and
                False/0 for padding, as in Hugging Face. Padding keys get no weight. A
                query that sees no real key (a left-padding position) outputs zeros.
            position_ids: ``(batch, seq)`` or ``(seq,)`` integer positions of the new
                tokens, >= 0, used by RoPE (e.g. ``cumsum(mask) - 1`` for left padding).
                The relative-bias schemes (alibi, t5, shaw) use the distance between
                columns, which left padding leaves unchanged; they refuse
                ``position_ids``. The absolute schemes add their table outside this layer.
        """
        check_tensor("x", x, ndim=3, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x.shape[-1] must be d_model={self.d_model}, got {x.shape[-1]}")
        batch, seq, _ = x.shape
        offset = kv_cache.length if kv_cache is not None else 0
        position_ids = self._check_position_ids(position_ids, batch, seq)
        hd, kvh = self.head_dim, self.num_kv_heads
        q, k, v = self.qkv(x).split([self.d_model, kvh * hd, kvh * hd], dim=-1)
        q = q.view(batch, seq, self.num_heads, hd).transpose(1, 2)  # (batch, heads, seq, hd)
        k = k.view(batch, seq, kvh, hd).transpose(1, 2)
        v = v.view(batch, seq, kvh, hd).transpose(1, 2)
        if self.position == "rope" and seq:  # RotaryEmbedding rotates via apply_rope_fast
            if position_ids is None:
                q, k = self.rotary(q, k, offset=offset)
            else:
                q, k = self.rotary(q, k, position_ids)
        if kv_cache is not None:  # k, v: (batch, kv_heads, offset + seq, head_dim)
            k, v = kv_cache.append(k, v)
        k_len = k.shape[-2]
        if kvh != self.num_heads:  # grouped-query attention: repeat each kv head
            k = k.repeat_interleave(self.num_heads // kvh, dim=1)
            v = v.repeat_interleave(self.num_heads // kvh, dim=1)
        keep = _padding_mask(attention_mask, batch, k_len, x.device)
        p_drop = self.dropout if self.training else 0.0
        if self.position == "shaw":
            y = self._shaw_attention(q, k, v, offset, p_drop, keep)
        else:
            bias = self._bias(seq, k_len, offset, q)
            dead = None
            if keep is not None:  # (batch, 1, 1, k_len) padding, joined with the bias
                bias, dead = _join_padding(bias, keep, seq, k_len, offset, self.causal, q)
            plain_causal = self.causal and bias is None
            scale = None if self.position != "t5" or self.t5_scale_logits else 1.0
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=p_drop, is_causal=plain_causal, scale=scale
            )
            if dead is not None:
                y = y.masked_fill(dead, 0.0)
        # (batch, heads, seq, head_dim) -> (batch, seq, d_model)
        return self.out(y.transpose(1, 2).reshape(batch, seq, self.d_model))

    def _check_position_ids(self, position_ids, batch: int, seq: int):
        if position_ids is None:
            return None
        if self.position in ("alibi", "t5", "shaw"):
            raise ValueError(
                f"position_ids are used by RoPE only; position={self.position!r} biases by "
                "column distance (left padding with attention_mask leaves it unchanged)"
            )
        check_tensor("position_ids", position_ids)
        if position_ids.is_floating_point() or position_ids.dtype == torch.bool:
            raise TypeError(f"position_ids must be integers, got dtype {position_ids.dtype}")
        if position_ids.ndim == 1:
            position_ids = position_ids.expand(batch, -1)
        if position_ids.shape != (batch, seq):
            raise ValueError(
                f"position_ids must be (batch, seq) = {(batch, seq)} or (seq,), got shape "
                f"{tuple(position_ids.shape)}"
            )
        if not torch.compiler.is_compiling() and position_ids.numel():
            if position_ids.min() < 0:
                raise ValueError(f"position_ids must be >= 0, got {int(position_ids.min())}")
        return position_ids

    def _shaw_attention(self, q, k, v, offset: int, p_drop: float, keep=None) -> torch.Tensor:
        q_len, k_len = q.shape[-2], k.shape[-2]
        # Both logit terms are linear in q: scaling q once saves a pass over the scores.
        # In-place updates are safe, none of these ops needs its output for backward.
        q = q / math.sqrt(self.head_dim)
        scores = q @ k.transpose(-2, -1)
        scores += self.shaw.key_bias(q, q_len, k_len, offset=offset)
        allowed = causal_mask(q_len, k_len, offset=offset, device=q.device) if self.causal else None
        if keep is not None:
            allowed = keep if allowed is None else allowed & keep
        dead = None
        if allowed is not None:
            dead = ~allowed.any(-1, keepdim=True)  # rows that see no key: output zeros
            scores.masked_fill_(~(allowed | dead), float("-inf"))
        weights = F.dropout(scores.softmax(dim=-1), p=p_drop)
        if dead is not None:
            weights = weights.masked_fill(dead, 0.0)
        return weights @ v + self.shaw.value_term(weights, q_len, k_len, offset=offset)

    def extra_repr(self) -> str:
        kv = f", num_kv_heads={self.num_kv_heads}" if self.num_kv_heads != self.num_heads else ""
        return (
            f"d_model={self.d_model}, num_heads={self.num_heads}{kv}, "
            f"position={self.position!r}, causal={self.causal}"
        )


def _check_shared_t5(t5: T5RelativePositionBias, num_heads: int, causal: bool) -> None:
    if not isinstance(t5, T5RelativePositionBias):
        raise TypeError(f"t5_bias must be a T5RelativePositionBias, got {type(t5).__name__}")
    if t5.num_heads != num_heads:
        raise ValueError(
            f"t5_bias must have one column per head: num_heads={num_heads}, "
            f"got t5_bias.num_heads={t5.num_heads}"
        )
    if t5.bidirectional == causal:
        raise ValueError(
            f"t5_bias.bidirectional must be {not causal} for causal={causal} (decoder "
            "buckets see only the past), got the opposite"
        )
