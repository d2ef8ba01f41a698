"""T5 relative position bias (Raffel et al., 2020, "Exploring the Limits of Transfer Learning").

Each head adds a learned scalar ``b_h[bucket(j - i)]`` to the attention logit of query ``i``
and key ``j``. Small distances get one bucket each; larger distances share buckets whose
width grows logarithmically up to ``max_distance``, beyond which everything falls in the
last bucket. :func:`t5_relative_position_bucket` follows the reference implementation
(Mesh TensorFlow ``_relative_position_bucket``, also ``T5Attention._relative_position_bucket``
in Hugging Face transformers) operation by operation, in float32, so bucket ids agree
exactly.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ._validation import check_bool, check_init_std, check_int
from .relative import relative_positions

__all__ = ["t5_relative_position_bucket", "T5RelativePositionBias"]


def _check_bucket_args(num_buckets: int, max_distance: int, bidirectional: bool) -> int:
    check_int("num_buckets", num_buckets, minimum=4 if bidirectional else 2)
    half = num_buckets // 2 if bidirectional else num_buckets
    max_exact = half // 2
    check_int("max_distance", max_distance)
    if max_distance <= max_exact:
        raise ValueError(
            f"max_distance must be > max_exact = {max_exact} (the exact-bucket range for "
            f"num_buckets={num_buckets}, bidirectional={bidirectional}), got {max_distance}"
        )
    return max_exact


def t5_relative_position_bucket(
    relative_position,
    *,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> torch.Tensor:
    """Map relative positions ``j - i`` (key minus query) to T5 bucket ids.

    Algorithm (``n`` buckets, ``n_d = max_distance``):

    1. bidirectional: ``n <- n // 2``; keys after the query (``j - i > 0``) add ``n`` to the
       bucket; continue with ``r = |j - i|``. Unidirectional: ``r = max(i - j, 0)``
       (future keys all go to bucket 0).
    2. ``max_exact = n // 2``; if ``r < max_exact`` the bucket is ``r``;
    3. else ``max_exact + floor(log(r / max_exact) / log(n_d / max_exact) * (n - max_exact))``,
       clamped to ``n - 1``: logarithmic widths, and every ``r >= n_d`` in the last bucket.

    Args:
        relative_position: integer tensor (any shape) or int of relative positions ``j - i``.
        bidirectional: encoder (both signs) or decoder (only the past is distinguished).
        num_buckets: total number of buckets (32 in T5); >= 4 if bidirectional, else >= 2.
        max_distance: distance from which all offsets share the last bucket (128 in T5);
            must exceed ``max_exact``.

    Returns:
        long tensor with the shape of ``relative_position``, values in ``[0, num_buckets)``.
    """
    bidirectional = check_bool("bidirectional", bidirectional)
    max_exact = _check_bucket_args(num_buckets, max_distance, bidirectional)
    if isinstance(relative_position, bool):
        raise TypeError("relative_position must be an int or an integer tensor, got bool")
    if isinstance(relative_position, numbers.Integral):
        relative_position = torch.tensor(int(relative_position))
    if not isinstance(relative_position, torch.Tensor):
        raise TypeError(
            "relative_position must be an int or an integer tensor, got "
            f"{type(relative_position).__name__}"
        )
    if (
        relative_position.is_floating_point()
        or relative_position.is_complex()
        or relative_position.dtype == torch.bool
    ):
        raise TypeError(
            f"relative_position must have an integer dtype, got {relative_position.dtype}"
        )
    rel = relative_position.long()
    buckets = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (rel > 0).long() * num_buckets
        dist = rel.abs()
    else:
        dist = -torch.clamp(rel, max=0)
    is_small = dist < max_exact
    # float32, same operation order as the reference; clamp avoids log(0) (masked anyway)
    ratio = dist.clamp(min=max_exact).float() / max_exact
    large = (
        max_exact
        + (torch.log(ratio) / math.log(max_distance / max_exact) * (num_buckets - max_exact)).long()
    )
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(is_small, dist, large)


class T5RelativePositionBias(nn.Module):
    """Learned per-head scalar bias ``b[bucket(j - i), h]``: an ``nn.Embedding(num_buckets,
    num_heads)``.

    What T5 does, and how to get it here:

    - T5 keeps one table per stack (encoder, decoder): only the first layer owns
      ``relative_attention_bias``, computes the bias and hands it to every later layer of
      the stack (Hugging Face ``T5Stack``: ``has_relative_attention_bias=bool(i == 0)``).
      By default each :class:`~posenc_lib.attention.MultiHeadAttention` builds its own
      table; pass one instance as ``t5_bias=`` to every layer (or to
      :class:`~posenc_lib.model.TinyTransformer`, which forwards it) to share it as T5 does.
    - T5 adds the bias to the *unscaled* logits ``q k^T``: there is no ``1/sqrt(d)``
      anywhere, the scale is folded into the initialisation of ``W_Q`` (Hugging Face
      ``T5Attention``: "Mesh TensorFlow initialization to avoid scaling before softmax").
      The library's layer scales ``q k^T`` by ``1/sqrt(d_k)`` and adds the bias unscaled,
      unless ``t5_scale_logits=False``, which gives T5's ``q k^T + B``.

    Args:
        num_heads: number of heads, >= 1.
        num_buckets, max_distance, bidirectional: see :func:`t5_relative_position_bucket`.
        init_std: standard deviation of the normal initialisation.

    Shapes:
        ``forward(q_len, k_len, offset=o)`` -> ``(num_heads, q_len, k_len)`` for queries at
        positions ``o .. o + q_len - 1`` (``o = k_len - q_len`` with a KV cache), on the
        device and in the dtype of the embedding.
    """

    def __init__(
        self,
        num_heads: int,
        *,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        check_int("num_heads", num_heads, minimum=1)
        bidirectional = check_bool("bidirectional", bidirectional)
        _check_bucket_args(num_buckets, max_distance, bidirectional)
        check_init_std(init_std)
        self.num_heads, self.num_buckets = num_heads, num_buckets
        self.max_distance, self.bidirectional = max_distance, bool(bidirectional)
        self.embedding = nn.Embedding(num_buckets, num_heads)
        nn.init.normal_(self.embedding.weight, std=init_std)

    def buckets(self, q_len: int, k_len: int, *, offset: int = 0) -> torch.Tensor:
        """``(q_len, k_len)`` bucket ids, on the embedding's device."""
        rel = relative_positions(q_len, k_len, offset=offset, device=self.embedding.weight.device)
        return t5_relative_position_bucket(
            rel,
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )

    def forward(self, q_len: int, k_len: int, *, offset: int = 0) -> torch.Tensor:
        """Return the additive bias ``B[h, i, j]`` = learned scalar of head ``h`` for the
        bucket of ``j - (i + offset)``, shape ``(num_heads, q_len, k_len)``.

        ``B`` is constant along diagonals (it depends on ``j - i`` only), so the table is
        looked up once per distance, ``q_len + k_len - 1`` rows, and the matrix is built
        from a strided view of that vector (one copy):
        ``B[h, i, j] = u[h, j - i + q_len - 1]``. Looking up all ``q_len * k_len`` pairs
        (:meth:`buckets` and an embedding lookup) gives the same numbers with a much larger
        backward pass.
        """
        check_int("q_len", q_len, minimum=0)
        check_int("k_len", k_len, minimum=0)
        check_int("offset", offset)
        if q_len == 0 or k_len == 0:
            return self.embedding(self.buckets(q_len, k_len, offset=offset)).permute(2, 0, 1)
        # u[:, t] is the bias of distance t - (q_len - 1) - offset, t = 0 .. q_len + k_len - 2
        rel = self.buckets(1, q_len + k_len - 1, offset=q_len - 1 + offset)[0]
        u = self.embedding(rel).T  # (heads, q_len + k_len - 1)
        # unfold: [h, r, c] = u[h, r + c]; row r = q_len - 1 - i, hence the flip
        return u.unfold(1, k_len, 1).flip(1)

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, num_buckets={self.num_buckets}, "
            f"max_distance={self.max_distance}, bidirectional={self.bidirectional}"
        )
