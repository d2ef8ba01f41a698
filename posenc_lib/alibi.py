"""ALiBi: attention with linear biases (Press et al., 2022, "Train Short, Test Long").

No position vectors at all: head ``h`` adds ``-m_h (i - j)`` to the logit of query ``i`` and
key ``j <= i``, a penalty growing linearly with distance, with a fixed head-specific slope
``m_h``. For ``n`` heads (a power of two) the slopes are the geometric sequence
``m_h = 2^{-8h/n}``, ``h = 1..n``; other head counts follow the rule of the reference code.
"""

from __future__ import annotations

import math

import torch

from ._validation import check_bool, check_float_dtype, check_int
from .relative import relative_positions

__all__ = ["alibi_slopes", "alibi_bias"]


def _slopes_list(n: int) -> list[float]:
    """Reference rule (``get_slopes`` in github.com/ofirpress/attention_with_linear_biases)."""
    if n & (n - 1) == 0:  # power of two: start = ratio = 2^(-8/n)
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]
    closest = 2 ** math.floor(math.log2(n))
    return _slopes_list(closest) + _slopes_list(2 * closest)[0::2][: n - closest]


def alibi_slopes(
    num_heads: int, *, device=None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Head slopes ``m_h`` of Press et al. (2022).

    - ``num_heads`` a power of two: ``m_h = 2^{-8h/n}`` for ``h = 1..n``
      (8 heads: 1/2, 1/4, ..., 1/256).
    - otherwise: the ``2^floor(log2 n)`` slopes of the closest smaller power of two, then
      every other slope (1st, 3rd, ...) of the sequence for twice that power, until
      ``num_heads`` slopes (12 heads: the 8-head slopes, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5).

    Returns:
        tensor of shape ``(num_heads,)`` and ``dtype`` (default float32; computed in
        float64, then cast).

    Raises:
        ValueError: ``num_heads < 1``.
    """
    num_heads = check_int("num_heads", num_heads, minimum=1)
    check_float_dtype("dtype", dtype)
    return torch.tensor(_slopes_list(num_heads), dtype=torch.float64, device=device).to(dtype)


def alibi_bias(
    num_heads: int,
    q_len: int,
    k_len: int | None = None,
    *,
    causal: bool = True,
    offset: int = 0,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Additive ALiBi bias, ``(num_heads, q_len, k_len)``.

    Query row ``r`` sits at position ``i = r + offset`` (with a KV cache,
    ``offset = k_len - q_len``); key column ``j`` at position ``j``.

    - ``causal=True`` (the paper, decoder LMs): ``B[h, r, j] = -m_h (i - j)`` for ``j <= i``
      and ``-inf`` for future keys ``j > i``, so the bias *is also the causal mask*: add it to
      the logits (or pass it as ``attn_mask`` to ``scaled_dot_product_attention``) and do
      not mask again. A row with no visible key (``i < 0``) would be all ``-inf``.
    - ``causal=False`` (symmetric variant used for bidirectional encoders in later work):
      ``B[h, r, j] = -m_h |i - j|``, no mask.

    The bias is added to the logits after the ``1/sqrt(d)`` scaling of ``q k^T``.

    Args:
        num_heads: number of heads (slopes from :func:`alibi_slopes`), >= 1.
        q_len, k_len: numbers of queries and keys, >= 0 (``k_len`` defaults to ``q_len``).
        causal: see above.
        offset: position of the first query, int.
        device: device of the result.
        dtype: floating dtype of the result (computed in float64 for float64, else in
            float32, then cast). Penalties below the dtype's lowest finite value (float16:
            -65 504, reached at distance 131 008 for the first of 8 heads) are clamped to
            it, so a visible key never gets ``-inf``: its weight is zero either way.

    Returns:
        ``(num_heads, q_len, k_len)`` tensor of ``dtype``.
    """
    check_int("num_heads", num_heads, minimum=1)
    check_float_dtype("dtype", dtype)
    causal = check_bool("causal", causal)
    k_len = q_len if k_len is None else k_len
    rel = relative_positions(q_len, k_len, offset=offset, device=device)  # j - i
    # float64 stays float64; every other dtype is computed in float32. The clamp bound is
    # taken in the working dtype: float64's lowest value does not fit in float32.
    work = torch.float64 if dtype == torch.float64 else torch.float32
    slopes = alibi_slopes(num_heads, device=rel.device, dtype=work)
    lowest = max(torch.finfo(dtype).min, torch.finfo(work).min)  # float16: -65 504
    if causal:
        bias = (slopes[:, None, None] * rel.to(work)).clamp(min=lowest)  # = -m (i - j)
        bias = bias.masked_fill(rel[None] > 0, float("-inf"))
    else:
        bias = (-slopes[:, None, None] * rel.abs().to(work)).clamp(min=lowest)
    return bias.to(dtype)
