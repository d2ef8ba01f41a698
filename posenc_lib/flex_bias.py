"""Position biases (ALiBi, T5, Shaw) inside attention without a (seq x seq) bias tensor.

PyTorch's FlexAttention (``torch.nn.attention.flex_attention``, torch >= 2.5) takes a
``score_mod(score, b, h, q_idx, kv_idx)`` callable that edits each attention logit inside
the fused kernel, so a bias that is a function of ``(h, kv_idx - q_idx)`` never exists as
a ``(batch, heads, q_len, kv_len)`` tensor:

- ALiBi (Press et al., 2022): ``score - m_h (i - j)`` with a causal mask, or
  ``score - m_h |i - j|``: the two forms of :func:`posenc_lib.alibi.alibi_bias`.
- T5 (Raffel et al., 2020): ``score + B[bucket(j - i), h]``; the bucket lookup is done once
  for the ``q_len + kv_len - 1`` distinct offsets, a ``(2s - 1, heads)`` table.
- Shaw et al. (2018): ``score + scale * q_i . a_clip(j - i)``; ``q a^T`` is precomputed as a
  ``(batch, heads, q_len, 2K + 1)`` tensor, linear in the sequence length.

The three ``score_mod`` builders live in ``posenc_lib.score_mods`` (re-exported here).

Only the compiled FlexAttention (``torch.compile``, Inductor: Triton on CUDA, C++ on the CPU)
is fused; the eager call evaluates the same ``score_mod`` but materialises the score matrix
(use it for debugging). The documented fallback, used when FlexAttention is missing or with
``backend="sdpa"``, builds the bias with :func:`materialised_bias` and calls
:func:`torch.nn.functional.scaled_dot_product_attention` with it as ``attn_mask``.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F

from ._validation import check_bool, check_choice, check_int, check_tensor
from .attention_ops import causal_mask
from .relative import relative_positions, shaw_relative_indices
from .score_mods import (
    _shaw_q_rel,
    _t5_offset_table,
    alibi_score_mod,
    shaw_score_mod,
    t5_score_mod,
)

__all__ = [
    "flex_attention_available",
    "alibi_score_mod",
    "t5_score_mod",
    "shaw_score_mod",
    "materialised_bias",
    "attention_with_bias",
    "FlexRecompileLimitWarning",
]

SCHEMES = ("alibi", "t5", "shaw")
BACKENDS = ("auto", "flex", "flex_eager", "sdpa")


def flex_attention_available() -> bool:
    """True if ``torch.nn.attention.flex_attention`` can be imported (torch >= 2.5).

    Returns:
        bool; when False, :func:`attention_with_bias` falls back to ``backend="sdpa"``.
    """
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    # Static shapes: with torch 2.13 the dynamic-shape CPU template fails to compile (C++
    # error) once a second score_mod is seen. Each new (score_mod, shape) compiles anew;
    # past torch._dynamo.config.recompile_limit (8) dynamo would run the call unfused and
    # only log it: _run_compiled turns that into a loud warning and the SDPA path.
    return torch.compile(flex_attention, dynamic=False)


class FlexRecompileLimitWarning(RuntimeWarning):
    """``backend="flex"`` met a new shape after dynamo's recompile limit: that call (and
    every later new shape) ran through the SDPA fallback instead of a fused kernel."""


def _run_compiled(q, k, v, *, score_mod, block_mask, scale, fallback):
    """The compiled FlexAttention, or ``fallback()`` with a warning at the recompile limit.

    Without this, a new shape past ``torch._dynamo.config.recompile_limit`` makes dynamo
    run FlexAttention *eagerly* (unfused, 3-5 times slower, materialising the scores) and
    say so only in a log line. Here dynamo raises instead, and the call takes the SDPA
    path (same maths, materialised bias) with a :class:`FlexRecompileLimitWarning`.
    """
    import torch._dynamo

    try:
        with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
            return _compiled_flex()(
                q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale
            )
    except torch._dynamo.exc.FailOnRecompileLimitHit:
        limit = torch._dynamo.config.recompile_limit
        warnings.warn(
            f"attention_with_bias(backend='flex'): FlexAttention was already compiled for "
            f"{limit} shapes (torch._dynamo.config.recompile_limit = {limit}); this shape "
            f"{tuple(q.shape)} x {tuple(k.shape)} runs the SDPA fallback instead of an "
            "unfused eager FlexAttention. Pad inputs to a few lengths, or raise the limit.",
            FlexRecompileLimitWarning,
            stacklevel=4,
        )
        return fallback()


def _check_needed(scheme: str, **tables) -> None:
    """Raise unless the table that ``scheme`` needs was given."""
    name = {"alibi": "slopes", "t5": "bias_table", "shaw": "rel_table"}[scheme]
    if tables[name] is None:
        raise ValueError(f"scheme={scheme!r} needs the argument {name}")


def _check_heads(scheme: str, heads: int, slopes, bias_table) -> None:
    """Raise unless the per-head table has one entry per query head.

    Without it, 8 slopes for 4 heads would silently use the first 4 (FlexAttention indexes
    ``slopes[h]``) and 2 slopes for 4 heads would fail deep inside with an IndexError.
    """
    if scheme == "alibi":
        check_tensor("slopes", slopes, ndim=1, floating=True)
        if slopes.shape[0] != heads:
            raise ValueError(
                f"slopes must hold one slope per head: q has {heads} heads, "
                f"got slopes of shape {tuple(slopes.shape)}"
            )
    elif scheme == "t5":
        check_tensor("bias_table", bias_table, ndim=2, floating=True)
        if bias_table.shape[1] != heads:
            raise ValueError(
                f"bias_table must be (num_buckets, heads) with one column per head: q has "
                f"{heads} heads, got bias_table of shape {tuple(bias_table.shape)}"
            )


def materialised_bias(
    scheme: str,
    *,
    q_len: int,
    kv_len: int,
    slopes=None,
    bias_table=None,
    q=None,
    rel_table=None,
    scale=None,
    causal: bool = True,
    bidirectional: bool = True,
    max_distance: int = 128,
    offset: int = 0,
) -> torch.Tensor:
    """The bias as a tensor, what the SDPA fallback adds to the logits.

    With ``r = j - i`` (key minus query, :func:`posenc_lib.relative.relative_positions`;
    query row ``i`` sits at position ``i + offset``):
    ALiBi ``m_h r`` (``-inf`` where ``r > 0``: the causal form is also the mask) or
    ``-m_h |r|``; T5 ``B[bucket(r), h]``; Shaw ``scale * q_i . a_{clip(r, -K, K)}``.
    ``causal`` only picks ALiBi's form: the T5 and Shaw biases are returned unmasked.

    Args:
        scheme: ``"alibi"``, ``"t5"`` or ``"shaw"``.
        q_len, kv_len: numbers of queries and keys, >= 1.
        slopes: ``(heads,)`` ALiBi slopes (needed for ``"alibi"``).
        bias_table: ``(num_buckets, heads)`` T5 table (needed for ``"t5"``).
        q, rel_table, scale: ``(batch, heads, q_len, head_dim)`` queries, ``(2K + 1,
            head_dim)`` table and logit scale (needed for ``"shaw"``).
        causal, bidirectional, max_distance: as in :func:`attention_with_bias`.
        offset: position of the first query; default 0 (as :func:`~posenc_lib.alibi.alibi_bias`;
            :func:`attention_with_bias` passes ``kv_len - q_len`` by default).

    Returns:
        float ``(heads, q_len, kv_len)`` (ALiBi, T5) or ``(batch, heads, q_len, kv_len)``
        (Shaw).
    """
    check_choice("scheme", scheme, SCHEMES)
    check_int("q_len", q_len, minimum=1)
    check_int("kv_len", kv_len, minimum=1)
    offset = check_int("offset", offset)
    causal = check_bool("causal", causal)
    bidirectional = check_bool("bidirectional", bidirectional)
    _check_needed(scheme, slopes=slopes, bias_table=bias_table, rel_table=rel_table)
    if scheme == "shaw":
        check_tensor("q", q, ndim=4, floating=True)
        if scale is None:
            raise ValueError("scheme='shaw' needs the argument scale (e.g. 1 / sqrt(head_dim))")
    if scheme == "alibi":
        rel = relative_positions(q_len, kv_len, offset=offset, device=slopes.device).float()
        if not causal:
            return -slopes.float()[:, None, None] * rel.abs()
        bias = slopes.float()[:, None, None] * rel
        return bias.masked_fill(rel > 0, float("-inf"))
    if scheme == "t5":
        table = _t5_offset_table(
            bias_table,
            q_len,
            kv_len,
            bidirectional=bidirectional,
            num_buckets=bias_table.shape[0],
            max_distance=max_distance,
            offset=offset,
        )
        idx = relative_positions(q_len, kv_len, device=table.device) + q_len - 1
        return table[idx].permute(2, 0, 1)
    k_max = rel_table.shape[0] // 2
    idx = shaw_relative_indices(q_len, kv_len, max_distance=k_max, offset=offset, device=q.device)
    return torch.gather(
        _shaw_q_rel(q, rel_table) * scale, 3, idx.expand(*q.shape[:2], q_len, kv_len)
    )


def _check_qkv(q, k, v) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, t, ndim=4, floating=True)
    if k.shape[:3] != v.shape[:3] or k.shape[:2] != q.shape[:2] or k.shape[-1] != q.shape[-1]:
        raise ValueError(
            "q, k, v must be (batch, heads, seq, head_dim) with the same batch and heads, "
            "k and v the same seq, q and k the same head_dim; got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )


def attention_with_bias(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scheme: str,
    slopes=None,
    bias_table=None,
    rel_table=None,
    causal: bool = False,
    scale: float | None = None,
    bidirectional: bool = True,
    max_distance: int = 128,
    backend: str = "auto",
    offset: int | None = None,
) -> torch.Tensor:
    """Softmax attention with a position bias, ``softmax(scale q k^T + bias) v``.

    Query row ``r`` sits at position ``r + offset`` and key ``j`` at ``j``. By default
    ``offset = kv_len - q_len``: the queries are the *last* ``q_len`` tokens (bottom-right
    alignment), so one decoding query against 8 cached keys gets the last row of the full
    pass, as with :class:`~posenc_lib.attention.MultiHeadAttention`'s KV cache. Pass
    ``offset=0`` for queries that start at key 0.

    Args:
        q, k, v: ``(batch, heads, seq, head_dim)``, the same batch and heads; k and v share
            their seq (``kv_len``), q may have fewer (``q_len``).
        scheme: ``"alibi"`` (needs ``slopes``, one per head), ``"t5"`` (needs
            ``bias_table`` ``(num_buckets, heads)``; use ``scale=1.0`` as T5 does) or
            ``"shaw"`` (needs ``rel_table``).
        causal: mask keys after the query (``j > r + offset``); for ALiBi it also picks the
            form of the bias (``-m_h (i - j)`` causal, ``-m_h |i - j|`` bidirectional).
            Must be a bool.
        scale: logit scale, default ``1 / sqrt(head_dim)``.
        backend: ``"flex"`` (compiled FlexAttention: no ``(seq x seq)`` tensor),
            ``"flex_eager"`` (same maths, unfused: for debugging), ``"sdpa"`` (materialised
            bias through ``scaled_dot_product_attention``, the fallback) or ``"auto"``
            (``"flex"`` when FlexAttention imports, otherwise ``"sdpa"``). The first
            compiled call compiles a kernel (tens of seconds on a CPU), and so does each
            new shape; past ``torch._dynamo.config.recompile_limit`` (8) new shapes take
            the ``"sdpa"`` path with a :class:`FlexRecompileLimitWarning` (rather than
            dynamo's silent, unfused eager FlexAttention).
        offset: position of the first query, int; default ``kv_len - q_len``. With
            ``causal=True`` it must be >= 0 (a query before every key would see nothing).

    Returns:
        ``(batch, heads, q_len, head_dim)``.

    Raises:
        ValueError: mismatched shapes, or a per-head table (``slopes``, ``bias_table``)
            whose head count differs from ``q``'s.
    """
    check_choice("scheme", scheme, SCHEMES)
    check_choice("backend", backend, BACKENDS)
    causal = check_bool("causal", causal)
    bidirectional = check_bool("bidirectional", bidirectional)
    _check_qkv(q, k, v)
    _check_needed(scheme, slopes=slopes, bias_table=bias_table, rel_table=rel_table)
    _check_heads(scheme, q.shape[1], slopes, bias_table)
    q_len, kv_len = q.shape[-2], k.shape[-2]
    offset = kv_len - q_len if offset is None else check_int("offset", offset)
    if causal and offset < 0:
        raise ValueError(
            f"offset must be >= 0 with causal=True (query 0 would see no key), got {offset}"
        )
    if q_len == 0:  # nothing to attend from: an empty answer in every dtype and backend
        return q.new_zeros(*q.shape[:-1], v.shape[-1])
    if kv_len == 0:
        raise ValueError(f"k and v must hold at least one key, got k of shape {tuple(k.shape)}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if backend == "auto":
        backend = "flex" if flex_attention_available() else "sdpa"

    def sdpa():
        bias = materialised_bias(
            scheme,
            q_len=q_len,
            kv_len=kv_len,
            slopes=slopes,
            bias_table=bias_table,
            q=q,
            rel_table=rel_table,
            scale=scale,
            causal=causal,
            bidirectional=bidirectional,
            max_distance=max_distance,
            offset=offset,
        ).to(q.dtype)
        if causal and scheme != "alibi":  # causal ALiBi's bias already is the mask
            keep = causal_mask(q_len, kv_len, offset=offset, device=q.device)  # j <= r + offset
            bias = bias.masked_fill_(~keep, float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)

    if backend == "sdpa":
        return sdpa()
    return _flex_call(
        q, k, v, scheme, slopes, bias_table, rel_table, causal, scale, bidirectional,
        max_distance, offset, backend, sdpa,
    )  # fmt: skip


def _causal_block_mask(q_len: int, kv_len: int, offset: int, device, block: int = 128):
    """FlexAttention's causal ``BlockMask`` (key ``j`` visible from query row ``r`` when
    ``j <= r + offset``), built from block indices.

    For query block ``a`` (rows ``[a B, (a+1) B)``) and key block ``c``, a block is *full*
    when every pair in it is visible, ``a B + offset >= (c+1) B - 1`` (and neither block is
    cut short by the end of the sequence), and *partial* when some pair is,
    ``min((a+1) B, q_len) - 1 + offset >= c B``. That is ``O((q_len / B)(kv_len / B))``
    work and memory; ``create_block_mask`` (uncompiled) first builds the mask of all
    ``q_len * kv_len`` pairs as a tensor (causal ALiBi peaked at 10 bytes per pair, 43 GB
    at 64k tokens, in the H200 benchmark: "Making it fast"). The result equals ``create_block_mask``'s, tensor
    for tensor (tests/test_flex_bias.py).
    """
    from torch.nn.attention.flex_attention import BlockMask

    nq, nk = -(-q_len // block), -(-kv_len // block)
    qb = torch.arange(nq, device=device)[:, None]
    kb = torch.arange(nk, device=device)[None, :]
    whole = ((qb + 1) * block <= q_len) & ((kb + 1) * block <= kv_len)
    full = whole & (qb * block + offset >= (kb + 1) * block - 1)
    partial = (torch.clamp((qb + 1) * block, max=q_len) - 1 + offset >= kb * block) & ~full

    def pack(sel):  # per query block: how many key blocks, their indices first (ascending)
        order = torch.argsort((~sel).to(torch.int8), dim=-1, stable=True)
        return sel.sum(-1).to(torch.int32)[None, None], order.to(torch.int32)[None, None]

    def keep_past(b, h, q_idx, kv_idx):
        return q_idx + offset >= kv_idx

    return BlockMask.from_kv_blocks(
        *pack(partial),
        *pack(full),
        BLOCK_SIZE=block,
        mask_mod=keep_past,
        seq_lengths=(q_len, kv_len),
    )


def _flex_call(
    q, k, v, scheme, slopes, bias_table, rel_table, causal, scale, bidirectional, max_distance,
    offset, backend, fallback,
):  # fmt: skip
    from torch.nn.attention.flex_attention import flex_attention

    q_len, kv_len = q.shape[-2], k.shape[-2]
    if scheme == "alibi":
        score_mod = alibi_score_mod(slopes, causal=causal, offset=offset)
    elif scheme == "t5":
        score_mod = t5_score_mod(
            bias_table,
            q_len=q_len,
            kv_len=kv_len,
            bidirectional=bidirectional,
            max_distance=max_distance,
            offset=offset,
        )
    else:
        score_mod = shaw_score_mod(q, rel_table, scale=scale, offset=offset)
    block_mask = _causal_block_mask(q_len, kv_len, offset, q.device) if causal else None
    if backend == "flex":
        return _run_compiled(
            q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale, fallback=fallback
        )
    with warnings.catch_warnings():  # the eager path warns that it is unfused: we know
        warnings.simplefilter("ignore", UserWarning)
        return flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale)
