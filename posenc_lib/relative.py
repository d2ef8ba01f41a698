"""Relative position representations: Shaw et al. (2018) and Transformer-XL (Dai et al., 2019).

Library convention: the relative position of key ``j`` seen from query ``i`` is
``j - i`` (key minus query), so earlier keys have negative relative positions.

- Shaw et al. (2018), "Self-Attention with Relative Position Representations": learned
  vectors ``a^K_{ij} = w^K_{clip(j-i, -k, k)}`` and ``a^V_{ij} = w^V_{clip(j-i, -k, k)}``;
  ``e_ij = q_i . (k_j + a^K_ij) / sqrt(d)`` and ``z_i = sum_j alpha_ij (v_j + a^V_ij)``.
- Dai et al. (2019), "Transformer-XL": the expansion of the absolute logit
  ``(x_i + p_i) W_q W_k^T (x_j + p_j)^T`` into four terms (:func:`absolute_logit_terms`),
  in which ``p_j`` is replaced by a sinusoidal ``R_{i-j}`` and ``p_i`` by learned vectors
  ``u, v`` (:func:`transformer_xl_logits`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ._validation import check_init_std, check_int, check_positive_float, check_tensor
from .sinusoidal import sinusoidal_encoding

__all__ = [
    "relative_positions",
    "shaw_relative_indices",
    "shaw_key_logits",
    "shaw_value_term",
    "ShawRelativePosition",
    "AbsoluteLogitTerms",
    "absolute_logit_terms",
    "transformer_xl_distances",
    "transformer_xl_logits",
    "TransformerXLRelativeBias",
]


def relative_positions(q_len: int, k_len: int, *, offset: int = 0, device=None) -> torch.Tensor:
    """Matrix of relative positions ``rel[i, j] = j - (i + offset)`` (key minus query).

    ``offset`` is the absolute position of the first query. With a KV cache the queries
    are the last ``q_len`` of ``k_len`` tokens: pass ``offset = k_len - q_len``.

    Returns:
        long tensor of shape ``(q_len, k_len)``.
    """
    check_int("q_len", q_len, minimum=0)
    check_int("k_len", k_len, minimum=0)
    check_int("offset", offset)
    query = torch.arange(q_len, device=device) + offset
    key = torch.arange(k_len, device=device)
    return key[None, :] - query[:, None]


# --------------------------------------------------------------------- Shaw et al. (2018)


def shaw_relative_indices(
    q_len: int, k_len: int, *, max_distance: int, offset: int = 0, device=None
) -> torch.Tensor:
    """Row of the Shaw table used by pair ``(i, j)``: ``clip(j - i, -k, k) + k``, in ``[0, 2k]``.

    Every distance beyond ``k = max_distance`` shares the edge vector.

    Returns:
        long tensor of shape ``(q_len, k_len)``.
    """
    check_int("max_distance", max_distance, minimum=0)
    rel = relative_positions(q_len, k_len, offset=offset, device=device)
    return rel.clamp(-max_distance, max_distance) + max_distance


def shaw_key_logits(q: torch.Tensor, rel_emb_k: torch.Tensor) -> torch.Tensor:
    """The relative logit term ``q_i . a^K_ij`` of Shaw et al. (2018), eq. (4), unscaled.

    Args:
        q: queries ``(batch, heads, q_len, head_dim)``.
        rel_emb_k: gathered key vectors ``a^K`` of shape ``(q_len, k_len, head_dim)``
            (shared by all heads, as in the paper).

    Returns:
        ``(batch, heads, q_len, k_len)``; add it to ``q k^T`` *before* dividing by
        ``sqrt(head_dim)``.
    """
    check_tensor("q", q, ndim=4, floating=True)
    check_tensor("rel_emb_k", rel_emb_k, ndim=3, floating=True)
    if rel_emb_k.shape[0] != q.shape[2] or rel_emb_k.shape[2] != q.shape[3]:
        raise ValueError(
            f"rel_emb_k must be (q_len={q.shape[2]}, k_len, head_dim={q.shape[3]}), "
            f"got {tuple(rel_emb_k.shape)}"
        )
    return torch.einsum("bhqd,qkd->bhqk", q, rel_emb_k.to(q.dtype))


def shaw_value_term(attn_weights: torch.Tensor, rel_emb_v: torch.Tensor) -> torch.Tensor:
    """The relative value term ``sum_j alpha_ij a^V_ij`` of Shaw et al. (2018), eq. (3).

    Args:
        attn_weights: softmax weights ``alpha`` of shape ``(batch, heads, q_len, k_len)``.
        rel_emb_v: gathered value vectors ``a^V`` of shape ``(q_len, k_len, head_dim)``.

    Returns:
        ``(batch, heads, q_len, head_dim)``, to add to ``alpha @ v``.
    """
    check_tensor("attn_weights", attn_weights, ndim=4, floating=True)
    check_tensor("rel_emb_v", rel_emb_v, ndim=3, floating=True)
    if tuple(rel_emb_v.shape[:2]) != tuple(attn_weights.shape[2:]):
        raise ValueError(
            f"rel_emb_v must be (q_len, k_len, head_dim) = ({attn_weights.shape[2]}, "
            f"{attn_weights.shape[3]}, head_dim), got {tuple(rel_emb_v.shape)}"
        )
    return torch.einsum("bhqk,qkd->bhqd", attn_weights, rel_emb_v.to(attn_weights.dtype))


class ShawRelativePosition(nn.Module):
    """Learned clipped relative vectors ``w^K, w^V`` of shape ``(2k + 1, head_dim)``.

    Pair ``(i, j)`` uses row ``clip(j - i, -k, k) + k`` with ``k = max_distance``. Use it as
    ``logits = (q @ k^T + rel.key_bias(q, q_len, k_len)) / sqrt(head_dim)`` and
    ``out = alpha @ v + rel.value_term(alpha, q_len, k_len)``.

    Args:
        head_dim: per-head feature dimension, >= 1.
        max_distance: clipping distance ``k`` (the paper finds k >= 2 enough; default 16).
        values: also learn the value vectors ``w^V`` (Shaw et al. use both).
        init_std: standard deviation of the normal initialisation, finite and >= 0.

    Shapes:
        ``key_bias(q, q_len, k_len)``: ``q`` ``(batch, heads, q_len, head_dim)`` ->
        ``(batch, heads, q_len, k_len)``; ``value_term(alpha, q_len, k_len)``:
        ``(batch, heads, q_len, k_len)`` -> ``(batch, heads, q_len, head_dim)``.
    """

    def __init__(
        self, head_dim: int, *, max_distance: int = 16, values: bool = True, init_std: float = 0.02
    ) -> None:
        super().__init__()
        check_int("head_dim", head_dim, minimum=1)
        check_int("max_distance", max_distance, minimum=0)
        check_init_std(init_std)
        self.head_dim, self.max_distance = head_dim, max_distance
        self.key_table = nn.Embedding(2 * max_distance + 1, head_dim)
        self.value_table = nn.Embedding(2 * max_distance + 1, head_dim) if values else None
        for table in (self.key_table, self.value_table):
            if table is not None:
                nn.init.normal_(table.weight, std=init_std)

    def indices(self, q_len: int, k_len: int, *, offset: int = 0) -> torch.Tensor:
        """``(q_len, k_len)`` table rows, see :func:`shaw_relative_indices`."""
        return shaw_relative_indices(
            q_len,
            k_len,
            max_distance=self.max_distance,
            offset=offset,
            device=self.key_table.weight.device,
        )

    def key_embeddings(self, q_len: int, k_len: int, *, offset: int = 0) -> torch.Tensor:
        """Gathered ``a^K``: ``(q_len, k_len, head_dim)``."""
        return self.key_table(self.indices(q_len, k_len, offset=offset))

    def value_embeddings(self, q_len: int, k_len: int, *, offset: int = 0) -> torch.Tensor:
        """Gathered ``a^V``: ``(q_len, k_len, head_dim)``."""
        if self.value_table is None:
            raise ValueError("this ShawRelativePosition was built with values=False")
        return self.value_table(self.indices(q_len, k_len, offset=offset))

    def key_bias(self, q: torch.Tensor, q_len: int, k_len: int, offset: int = 0) -> torch.Tensor:
        """Additive logit term ``q_i . a^K_ij``, ``(batch, heads, q_len, k_len)``.

        Unscaled: the caller divides it by ``sqrt(head_dim)`` together with ``q k^T``.
        ``q_len`` must equal ``q.shape[-2]``.
        """
        check_tensor("q", q, ndim=4, floating=True)
        if q.shape[2] != q_len:
            raise ValueError(f"q_len={q_len} does not match q.shape[2]={q.shape[2]}")
        # q_i . a^K_ij has only 2k + 1 distinct values per query, q_i . w_r: compute those,
        # then pick row clip(j - i) + k per pair. Same numbers as shaw_key_logits with the
        # gathered (q_len, k_len, head_dim) table, without building it.
        if q.shape[3] != self.head_dim:
            raise ValueError(
                f"q must be (batch, heads, q_len, head_dim={self.head_dim}), got {tuple(q.shape)}"
            )
        # At least float32: the gather's backward adds many gradients into one edge row,
        # which a half-precision (atomic, on CUDA) accumulation would round away.
        acc = torch.promote_types(q.dtype, torch.float32)
        per_row = q.to(acc) @ self.key_table.weight.to(device=q.device, dtype=acc).T
        rows = self.indices(q_len, k_len, offset=offset).to(q.device)
        return per_row.gather(-1, rows.expand(*q.shape[:2], q_len, k_len)).to(q.dtype)

    def value_term(
        self, attn_weights: torch.Tensor, q_len: int, k_len: int, offset: int = 0
    ) -> torch.Tensor:
        """``sum_j alpha_ij a^V_ij``, ``(batch, heads, q_len, head_dim)``; add to ``alpha @ v``.

        Computed as ``sum_r (sum_{j: row(i, j) = r} alpha_ij) w^V_r``: the weights are
        summed per table row first (2k + 1 of them), so the gathered
        ``(q_len, k_len, head_dim)`` table of :func:`shaw_value_term` is never built.
        """
        check_tensor("attn_weights", attn_weights, ndim=4, floating=True)
        if self.value_table is None:
            raise ValueError("this ShawRelativePosition was built with values=False")
        if tuple(attn_weights.shape[2:]) != (q_len, k_len):
            raise ValueError(
                f"attn_weights must be (batch, heads, q_len={q_len}, k_len={k_len}), "
                f"got {tuple(attn_weights.shape)}"
            )
        rows = self.indices(q_len, k_len, offset=offset).to(attn_weights.device)
        rows = rows.expand(attn_weights.shape)
        # Summed in at least float32: every key past the clip distance adds into one edge
        # row, and half-precision (atomic, on CUDA) additions would lose most of the sum.
        acc = torch.promote_types(attn_weights.dtype, torch.float32)
        per_row = attn_weights.new_zeros(
            *attn_weights.shape[:3], self.value_table.num_embeddings, dtype=acc
        )
        per_row = per_row.scatter_add(-1, rows, attn_weights.to(acc))
        table = self.value_table.weight.to(device=attn_weights.device, dtype=acc)
        return (per_row @ table).to(attn_weights.dtype)

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, max_distance={self.max_distance}, "
            f"values={self.value_table is not None}"
        )


# ------------------------------------------------------------ Transformer-XL (Dai et al.)


class AbsoluteLogitTerms(NamedTuple):
    """The four terms of ``(x_i + p_i) W_q W_k^T (x_j + p_j)^T`` (Dai et al., 2019, eq. 2).

    Each term is ``()`` for single vectors or ``(n_q, n_k)``; ``.total`` is their sum.
    """

    content_content: torch.Tensor  # (a) x_i W_q W_k^T x_j^T
    content_position: torch.Tensor  # (b) x_i W_q W_k^T p_j^T
    position_content: torch.Tensor  # (c) p_i W_q W_k^T x_j^T
    position_position: torch.Tensor  # (d) p_i W_q W_k^T p_j^T

    @property
    def total(self) -> torch.Tensor:
        """Sum of the four terms (equal to the unscaled absolute logit)."""
        return sum(self[1:], self[0])


def absolute_logit_terms(x_i, x_j, p_i, p_j, W_q, W_k) -> AbsoluteLogitTerms:  # noqa: N803
    """Expand the absolute-position attention logit into four terms.

    ``(x_i + p_i) W_q W_k^T (x_j + p_j)^T = (a) + (b) + (c) + (d)`` with
    (a) content-content, (b) content-position, (c) position-content,
    (d) position-position, each computed separately (Dai et al., 2019, section 3.3).

    Args:
        x_i, p_i: query-side tokens and positions, ``(d_model,)`` or ``(n_q, d_model)``.
        x_j, p_j: key-side tokens and positions, ``(d_model,)`` or ``(n_k, d_model)``.
        W_q, W_k: projections ``(d_model, d_head)``.

    Returns:
        :class:`AbsoluteLogitTerms`, each ``()`` or ``(n_q, n_k)``; ``.total`` is the sum.
    """

    def logit(a, b):
        return (a @ W_q) @ (b @ W_k).transpose(-1, -2) if b.ndim > 1 else (a @ W_q) @ (b @ W_k)

    return AbsoluteLogitTerms(logit(x_i, x_j), logit(x_i, p_j), logit(p_i, x_j), logit(p_i, p_j))


def transformer_xl_distances(q_len: int, k_len: int, *, offset: int = 0, device=None):
    """Transformer-XL distances ``i - j`` (query minus key) ``= -relative_positions(...)``.

    Returns:
        long tensor ``(q_len, k_len)``; non-negative on the causal part ``j <= i``.
    """
    return -relative_positions(q_len, k_len, offset=offset, device=device)


def transformer_xl_logits(q, k, r, u, v, w_r, *, return_terms: bool = False):
    """Transformer-XL relative attention logits (Dai et al., 2019, eq. 3), unscaled.

    .. math::

        A^{rel}_{ij} = \\underbrace{q_i^T k_j}_{(a)} + \\underbrace{q_i^T W_R R_{i-j}}_{(b)}
        + \\underbrace{u^T k_j}_{(c)} + \\underbrace{v^T W_R R_{i-j}}_{(d)}

    Sign: Transformer-XL indexes ``R`` by ``i - j`` (query minus key, >= 0 for past keys),
    the opposite of the library convention ``j - i``; ``R_{i-j}`` is the sinusoidal
    encoding of :func:`transformer_xl_distances`. The caller scales by ``1/sqrt(head_dim)``.

    Args:
        q: ``(batch, heads, q_len, head_dim)`` projected queries ``W_q x_i``.
        k: ``(batch, heads, k_len, head_dim)`` projected keys ``W_{k,E} x_j``.
        r: ``(q_len, k_len, d_model)`` encodings ``R_{i-j}``.
        u, v: ``(heads, head_dim)`` learned global content / position biases.
        w_r: ``(heads, head_dim, d_model)`` position-key projection ``W_{k,R}``.
        return_terms: also return the four terms ``(a, b, c, d)``.

    Returns:
        ``(batch, heads, q_len, k_len)`` logits, or ``(logits, (a, b, c, d))``.
    """
    check_tensor("q", q, ndim=4, floating=True)
    check_tensor("k", k, ndim=4, floating=True)
    check_tensor("r", r, ndim=3, floating=True)
    check_tensor("w_r", w_r, ndim=3, floating=True)
    if tuple(r.shape[:2]) != (q.shape[2], k.shape[2]):
        raise ValueError(
            f"r must be (q_len={q.shape[2]}, k_len={k.shape[2]}, d_model), got {tuple(r.shape)}"
        )
    term_a = q @ k.transpose(-1, -2)
    q_r = torch.einsum("bhqd,hdm->bhqm", q, w_r)  # project the query, not every R
    term_b = torch.einsum("bhqm,qkm->bhqk", q_r, r)
    term_c = torch.einsum("hd,bhkd->bhk", u, k)[:, :, None, :]
    term_d = torch.einsum("hm,qkm->hqk", torch.einsum("hd,hdm->hm", v, w_r), r)[None]
    logits = term_a + term_b + term_c + term_d
    return (logits, (term_a, term_b, term_c, term_d)) if return_terms else logits


class TransformerXLRelativeBias(nn.Module):
    """Holds ``u, v, W_{k,R}`` and computes Transformer-XL logits from ``q`` and ``k``.

    ``R_{i-j}`` is the sinusoidal encoding (concat layout, as in the reference code) of the
    distance ``i - j`` (query minus key). Only the ``q_len + k_len - 1`` distinct distances
    are encoded and projected; the ``(q_len, k_len)`` pattern is gathered afterwards (the
    job done by the "relative shift" trick of the original code).

    Args:
        d_model: dimension of ``R``, even.
        num_heads: number of heads, >= 1.
        head_dim: per-head dimension, >= 1.
        base: sinusoid base, finite and > 0.
        init_std: standard deviation of the normal initialisation of ``u`` and ``v``.

    Shapes:
        ``forward(q, k, offset=o)``: ``q`` ``(batch, num_heads, q_len, head_dim)``, ``k``
        ``(batch, num_heads, k_len, head_dim)`` -> ``(batch, num_heads, q_len, k_len)``.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        head_dim: int,
        *,
        base: float = 10_000.0,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        check_int("d_model", d_model, minimum=2, even=True)
        check_int("num_heads", num_heads, minimum=1)
        check_int("head_dim", head_dim, minimum=1)
        base = check_positive_float("base", base)
        init_std = check_init_std(init_std)
        self.d_model, self.num_heads, self.head_dim, self.base = d_model, num_heads, head_dim, base
        self.u = nn.Parameter(torch.randn(num_heads, head_dim) * init_std)
        self.v = nn.Parameter(torch.randn(num_heads, head_dim) * init_std)
        self.w_r = nn.Parameter(torch.randn(num_heads, head_dim, d_model) / math.sqrt(d_model))

    def encodings(self, q_len: int, k_len: int, *, offset: int = 0) -> torch.Tensor:
        """``R_{i-j}`` as a ``(q_len, k_len, d_model)`` tensor (float32)."""
        dist = transformer_xl_distances(q_len, k_len, offset=offset, device=self.u.device)
        flat = sinusoidal_encoding(
            dist.flatten().float(), self.d_model, base=self.base, layout="concat"
        )
        return flat.reshape(q_len, k_len, self.d_model)

    def forward(self, q: torch.Tensor, k: torch.Tensor, *, offset: int = 0) -> torch.Tensor:
        """``(batch, heads, q_len, k_len)`` unscaled logits (all four terms)."""
        check_tensor("q", q, ndim=4, floating=True)
        check_tensor("k", k, ndim=4, floating=True)
        expected = (self.num_heads, self.head_dim)
        for name, t in (("q", q), ("k", k)):
            if (t.shape[1], t.shape[3]) != expected:
                raise ValueError(
                    f"{name} must be (batch, num_heads={self.num_heads}, seq, "
                    f"head_dim={self.head_dim}), got {tuple(t.shape)}"
                )
        offset = check_int("offset", offset)
        q_len, k_len = q.shape[2], k.shape[2]
        dist = transformer_xl_distances(q_len, k_len, offset=offset, device=q.device)
        lo = offset - (k_len - 1)
        table = sinusoidal_encoding(
            torch.arange(lo, offset + q_len, device=q.device, dtype=torch.float32),
            self.d_model,
            base=self.base,
            layout="concat",
        ).to(q.dtype)  # (L, d_model), L = q_len + k_len - 1 distinct distances
        w_r, u, v = (t.to(q.dtype) for t in (self.w_r, self.u, self.v))
        proj = torch.einsum("hdm,lm->hld", w_r, table)  # W_R R for each distance
        index = (dist - lo)[None, None].expand(q.shape[0], self.num_heads, q_len, k_len)
        term_b = torch.gather(torch.einsum("bhqd,hld->bhql", q, proj), 3, index)
        term_d = torch.gather(
            torch.einsum("hd,hld->hl", v, proj)[None, :, None, :].expand(q.shape[0], -1, q_len, -1),
            3,
            index,
        )
        term_a = q @ k.transpose(-1, -2)
        term_c = torch.einsum("hd,bhkd->bhk", u, k)[:, :, None, :]
        return term_a + term_b + term_c + term_d
