"""Sinusoidal absolute position encodings (Vaswani et al., 2017, "Attention Is All You Need").

Position ``p`` gets the vector

.. math::

    P[p, 2i] = \\sin(p\\,\\omega_i), \\qquad P[p, 2i+1] = \\cos(p\\,\\omega_i), \\qquad
    \\omega_i = \\mathrm{base}^{-2i/d}, \\quad i = 0, \\dots, d/2 - 1

(the *interleaved* layout of the paper). The *concat* layout keeps the same frequencies
but stores the ``d/2`` sines first and the ``d/2`` cosines after them (the layout of
Transformer-XL and of many later code bases). Because each (sin, cos) pair is a point on a
circle turning at speed ``omega_i``, a shift by ``k`` positions is a fixed rotation of
every pair: ``P[p + k] = M_k P[p]`` for all ``p`` (:func:`sinusoidal_shift_matrix`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import (
    as_positions_checked,
    check_choice,
    check_float_dtype,
    check_int,
    check_tensor,
)
from .rope_scaling import base_inv_freq

__all__ = [
    "sinusoidal_frequencies",
    "sinusoidal_encoding",
    "sinusoidal_shift_matrix",
    "interleaved_to_concat_permutation",
    "concat_to_interleaved_permutation",
    "SinusoidalPositionalEncoding",
]

LAYOUTS = ("interleaved", "concat")


def sinusoidal_frequencies(
    d_model: int,
    *,
    base: float = 10_000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Angular frequencies ``omega_i = base**(-2i / d_model)`` for ``i = 0 .. d_model/2 - 1``.

    The first pair turns at 1 radian per position (wavelength ``2 pi``), the last one at
    almost ``1 / base`` (wavelength close to ``2 pi base``); the wavelengths form a
    geometric progression.

    Args:
        d_model: even feature dimension ``d``, >= 2.
        base: the constant ``base`` (10 000 in Vaswani et al., 2017), finite and > 0.
        dtype: floating dtype of the result (computed in float64, then cast).
        device: device of the result.

    Returns:
        Tensor of shape ``(d_model // 2,)``.
    """
    check_int("d_model", d_model, minimum=2, even=True)
    check_float_dtype("dtype", dtype)
    return base_inv_freq(d_model, base, device=device).to(dtype)  # float64, then cast


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _positions(positions, device, compute_dtype: torch.dtype) -> torch.Tensor:
    """Validate ``positions`` and return them in ``compute_dtype`` without a float32 detour."""
    checked = as_positions_checked(positions, device=device)  # raises on bad input
    if compute_dtype == torch.float32 or not isinstance(positions, torch.Tensor):
        return checked.to(compute_dtype)
    return positions.to(device=checked.device, dtype=compute_dtype)


def sinusoidal_encoding(
    positions: int | torch.Tensor,
    d_model: int,
    *,
    base: float = 10_000.0,
    layout: str = "interleaved",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sinusoidal position table of Vaswani et al. (2017).

    ``layout="interleaved"``: ``P[p, 2i] = sin(p w_i)``, ``P[p, 2i+1] = cos(p w_i)``;
    ``layout="concat"``: ``P[p, i] = sin(p w_i)``, ``P[p, d/2 + i] = cos(p w_i)``; in both,
    ``w_i = base**(-2i/d)`` (:func:`sinusoidal_frequencies`).

    Args:
        positions: an int ``n`` (positions ``0 .. n-1``) or a 1-D tensor of finite positions
            (fractional and negative values are allowed: the formula is defined everywhere).
        d_model: even feature dimension, >= 2.
        base: frequency base, finite and > 1.
        layout: ``"interleaved"`` (default) or ``"concat"``.
        dtype: dtype of the result. Angles are computed in float32 (float64 when ``dtype``
            is float64) and cast at the end.
        device: device of the result (default: that of ``positions``, or the CPU).

    Returns:
        Tensor of shape ``(n, d_model)``.

    Raises:
        ValueError: odd or too small ``d_model``, unknown ``layout``, non-finite positions.
    """
    check_int("d_model", d_model, minimum=2, even=True)
    check_choice("layout", layout, LAYOUTS)
    check_float_dtype("dtype", dtype)
    work = _compute_dtype(dtype)
    pos = _positions(positions, device, work)
    omega = sinusoidal_frequencies(d_model, base=base, dtype=work, device=pos.device)
    angles = pos[:, None] * omega[None, :]  # (n, d/2)
    sin, cos = torch.sin(angles), torch.cos(angles)
    if layout == "interleaved":
        table = torch.stack((sin, cos), dim=-1).flatten(-2)  # sin0 cos0 sin1 cos1 ...
    else:
        table = torch.cat((sin, cos), dim=-1)
    return table.to(dtype)


def interleaved_to_concat_permutation(
    d_model: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Feature permutation ``perm`` with ``concat_table = interleaved_table[:, perm]``.

    ``perm = [0, 2, 4, ..., d-2, 1, 3, ..., d-1]``: the even (sine) columns first, then the
    odd (cosine) columns. Its inverse is :func:`concat_to_interleaved_permutation`.

    Returns:
        long tensor of shape ``(d_model,)``.
    """
    check_int("d_model", d_model, minimum=2, even=True)
    idx = torch.arange(d_model, device=device)
    return torch.cat((idx[0::2], idx[1::2]))


def concat_to_interleaved_permutation(
    d_model: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Feature permutation ``perm`` with ``interleaved_table = concat_table[:, perm]``.

    ``perm = [0, d/2, 1, d/2 + 1, ...]``: sine ``i`` then cosine ``i`` for each pair.

    Returns:
        long tensor of shape ``(d_model,)``.
    """
    check_int("d_model", d_model, minimum=2, even=True)
    half = torch.arange(d_model // 2, device=device)
    return torch.stack((half, half + d_model // 2), dim=1).flatten()


def sinusoidal_shift_matrix(
    k: float,
    d_model: int,
    *,
    base: float = 10_000.0,
    layout: str = "interleaved",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The linear map ``M_k`` with ``P[p + k] = M_k @ P[p]`` for every position ``p``.

    From ``sin(a + b) = sin a cos b + cos a sin b`` and
    ``cos(a + b) = cos a cos b - sin a sin b`` with ``a = p w_i``, ``b = k w_i``, the pair
    ``(sin, cos)`` of frequency ``w_i`` is mapped by the 2x2 block

    .. math::

        \\begin{pmatrix} \\cos k\\omega_i & \\sin k\\omega_i \\\\
        -\\sin k\\omega_i & \\cos k\\omega_i \\end{pmatrix},

    which does not depend on ``p`` (Vaswani et al., 2017, section 3.5). In the interleaved
    layout ``M_k`` is block diagonal; in the concat layout the same entries sit at rows and
    columns ``(i, d/2 + i)``. ``M_k`` is orthogonal and ``M_k^T = M_{-k}``.

    Args:
        k: the shift (int or float, finite; negative shifts allowed).
        d_model: even feature dimension, >= 2.
        base: frequency base, finite and > 1.
        layout: ``"interleaved"`` or ``"concat"``, as in :func:`sinusoidal_encoding`.
        dtype: dtype of the result (computed in float64, then cast).
        device: device of the result.

    Returns:
        Tensor of shape ``(d_model, d_model)``.
    """
    if isinstance(k, bool) or not isinstance(k, int | float):
        raise TypeError(f"k must be an int or a float, got {type(k).__name__} ({k!r})")
    if not math.isfinite(k):
        raise ValueError(f"k must be finite, got {k}")
    check_int("d_model", d_model, minimum=2, even=True)
    check_choice("layout", layout, LAYOUTS)
    check_float_dtype("dtype", dtype)
    omega = sinusoidal_frequencies(d_model, base=base, dtype=torch.float64, device=device)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    blocks = torch.stack((torch.stack((c, s), -1), torch.stack((-s, c), -1)), -2)  # (d/2,2,2)
    matrix = torch.block_diag(*blocks)
    if layout == "concat":
        perm = interleaved_to_concat_permutation(d_model, device=matrix.device)
        matrix = matrix[perm][:, perm]
    return matrix.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sinusoidal table to token embeddings: ``y = x (* sqrt(d)) + P[offset + t]``.

    The table for positions ``0 .. max_len-1`` is precomputed as a non-persistent buffer
    (it is not saved in the ``state_dict``: it is a function, not a parameter). Longer
    inputs or larger offsets are not an error: the missing rows are computed on the fly,
    since the formula is defined for every position.

    Args:
        d_model: even feature dimension.
        max_len: number of precomputed positions, >= 1.
        base: frequency base.
        dropout: dropout probability applied to the sum (Vaswani et al. use 0.1).
        scale_input: multiply ``x`` by ``sqrt(d_model)`` first, as in the original
            Transformer, where embeddings are scaled before the encoding is added.

    Shapes:
        ``forward(x)``: ``x`` is ``(batch, seq, d_model)``; the output has the same shape
        and dtype.
    """

    def __init__(
        self,
        d_model: int,
        *,
        max_len: int = 4096,
        base: float = 10_000.0,
        dropout: float = 0.0,
        scale_input: bool = False,
    ) -> None:
        super().__init__()
        check_int("d_model", d_model, minimum=2, even=True)
        check_int("max_len", max_len, minimum=1)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.max_len, self.base = d_model, max_len, float(base)
        self.scale_input = bool(scale_input)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer(
            "table", sinusoidal_encoding(max_len, d_model, base=base), persistent=False
        )

    def positions_table(self, seq_len: int, *, offset: int = 0) -> torch.Tensor:
        """Rows ``offset .. offset + seq_len - 1`` of the table, float32, ``(seq_len, d)``."""
        check_int("seq_len", seq_len, minimum=0)
        check_int("offset", offset, minimum=0)
        end = offset + seq_len
        if end <= self.max_len:
            return self.table[offset:end]
        positions = torch.arange(offset, end, dtype=torch.float32, device=self.table.device)
        return sinusoidal_encoding(positions, self.d_model, base=self.base)

    def forward(self, x: torch.Tensor, *, offset: int = 0) -> torch.Tensor:
        check_tensor("x", x, ndim=3, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have last dimension d_model={self.d_model}, got {x.shape}")
        pe = self.positions_table(x.shape[1], offset=offset).to(device=x.device, dtype=x.dtype)
        if self.scale_input:
            x = x * math.sqrt(self.d_model)
        return self.dropout(x + pe)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, max_len={self.max_len}, base={self.base:g}, "
            f"scale_input={self.scale_input}"
        )
