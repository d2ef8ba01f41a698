"""Rotary position embedding, RoPE (Su et al., 2021, RoFormer): tables and rotation.

RoPE rotates each pair of query/key features by an angle proportional to the position:
pair ``k`` of a token at position ``m`` turns by ``m * theta_k`` with
``theta_k = base ** (-2k / d)``. Since rotations compose, ``<R_m q, R_n k> = <q, R_{n-m} k>``:
the attention score sees only the relative position ``n - m``. The frequency base is
called ``base`` here; Hugging Face calls it ``rope_theta`` and torchtune / Meta ``theta``
(:func:`posenc_lib.rope_convert.rope_kwargs_from_hf` maps a Hugging Face config).

**Pair layout: the library default is "half"**, and a checkpoint trained with the other
layout gives silently wrong attention unless its q/k weights are permuted first:

- ``"half"`` (GPT-NeoX, Hugging Face Llama, the default): feature ``k`` with ``k + n``
  (``n = number of pairs``), implemented with :func:`rotate_half`;
- ``"interleaved"`` (RoFormer, GPT-J, Meta's reference Llama, torchtune,
  rotary-embedding-torch): ``2k`` with ``2k + 1``, i.e.
  ``(x_2k + i x_2k+1) * exp(i m theta_k)``.

Either pass ``layout="interleaved"``, or permute the q/k projection rows once with
:func:`posenc_lib.rope_convert.permute_qk_weight` and keep ``"half"``.

Tensors are ``(..., seq, head_dim)`` by default; ``seq_dim=-3`` accepts the
``(batch, seq, heads, head_dim)`` layout of torchtune and flash-attn. Angles are computed
in float32 and cast at the end; :mod:`posenc_lib.rope_scaling` holds the
context-extension rules and :class:`posenc_lib.rope_module.RotaryEmbedding` the module.
"""

from __future__ import annotations

import math

import torch

from ._rope_impl import _needs_autograd, _rope_fast, _rope_formula, _RopeFunction, _transformed
from ._validation import (
    as_positions_checked,
    check_choice,
    check_float_dtype,
    check_int,
    check_positive_float,
    check_tensor,
)
from .rope_scaling import ROPE_INIT_FUNCTIONS, base_inv_freq, check_base, normalize_rope_scaling

__all__ = [
    "ROPE_LAYOUTS",
    "rope_inv_freq",
    "rope_angles",
    "rope_cos_sin",
    "rotate_half",
    "apply_rope",
    "rope_rotation_matrix",
]

ROPE_LAYOUTS = ("half", "interleaved")


def rope_inv_freq(
    head_dim: int,
    *,
    base: float = 10_000.0,
    scaling: dict | None = None,
    seq_len: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, float]:
    """RoPE inverse frequencies ``theta_i = base ** (-2 i / head_dim)`` and attention scale.

    ``scaling`` is a Hugging-Face-style ``rope_scaling`` dict (``rope_type`` in
    :data:`posenc_lib.rope_scaling.ROPE_TYPES`); ``seq_len`` is the current length, used by
    ``"dynamic"`` and ``"longrope"`` only. Computed in float64, returned as float32.

    Args:
        head_dim: number of rotated features ``d`` (even, >= 2; >= 4 for NTK rules).
        base: frequency base ``b`` (Hugging Face ``rope_theta``), finite and > 1.
        scaling: ``None`` or a ``rope_scaling`` dict.
        seq_len: ``None`` or int >= 1.
        device: device of the result.

    Returns:
        ``(inv_freq, attention_scaling)``: float32 ``(head_dim // 2,)`` and a float that
        multiplies ``cos`` and ``sin`` (1 except for YaRN and LongRoPE).
    """
    check_int("head_dim", head_dim, minimum=2, even=True)
    base = check_base(base)
    if seq_len is not None:
        check_int("seq_len", seq_len, minimum=1)
    params = normalize_rope_scaling(scaling)
    rope_type = "default" if params is None else params["rope_type"]
    if rope_type in ("ntk", "dynamic") and head_dim < 4:
        raise ValueError(f"head_dim must be >= 4 for rope_type {rope_type!r}, got {head_dim}")
    inv_freq, attention_scaling = ROPE_INIT_FUNCTIONS[rope_type](head_dim, base, params, seq_len)
    return inv_freq.to(device=device, dtype=torch.float32), float(attention_scaling)


def rope_angles(positions: int | torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Angles ``phi[m, k] = positions[m] * inv_freq[k]`` in float32, ``(seq, n_freq)``.

    ``positions``: int ``n`` (``0 .. n-1``) or a 1-D real tensor (fractional values
    allowed; bool tensors are rejected). The result is on ``inv_freq``'s device.
    """
    check_tensor("inv_freq", inv_freq, ndim=1, floating=True)
    pos = as_positions_checked(positions, device=inv_freq.device)
    return torch.outer(pos, inv_freq.to(torch.float32))


def rope_cos_sin(
    positions: int | torch.Tensor,
    inv_freq: torch.Tensor,
    *,
    attention_scaling: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` tables of the RoPE angles, for :func:`apply_rope`.

    ``cos[m, k] = s_att * cos(positions[m] * inv_freq[k])`` (same for ``sin``), angles in
    float32 (:func:`rope_angles`), cast to ``dtype`` at the end.

    Returns:
        ``(cos, sin)``, each ``(len(positions), len(inv_freq))``, on ``inv_freq``'s device.
    """
    check_float_dtype("dtype", dtype)
    scale = check_positive_float("attention_scaling", attention_scaling)
    angles = rope_angles(positions, inv_freq)
    cos, sin = angles.cos(), angles.sin()
    if scale != 1.0:
        cos, sin = cos * scale, sin * scale
    return cos.to(dtype), sin.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(x1, x2) -> (-x2, x1)`` on the two halves of the last dimension.

    The helper of the GPT-NeoX / Llama form of RoPE (layout ``"half"``):
    ``x * cos + rotate_half(x) * sin`` with ``cos``/``sin`` repeated over both halves rotates
    pair ``(x_k, x_{k+d/2})`` by its angle. It is the multiplication by ``i`` of the pairs
    seen as complex numbers.

    Args:
        x: ``(..., d)`` tensor with ``d`` even.

    Returns:
        Tensor of ``x``'s shape and dtype.
    """
    check_tensor("x", x, min_ndim=1)
    check_int("x.shape[-1]", x.shape[-1], even=True)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _check_tables(x, cos, sin):
    check_tensor("cos", cos, min_ndim=2, floating=True)
    check_tensor("sin", sin, min_ndim=2, floating=True)
    if cos.shape != sin.shape:
        raise ValueError(
            f"cos and sin must have the same shape, got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    if cos.device != x.device or sin.device != x.device:
        raise ValueError(f"cos/sin must be on x's device {x.device}, got {cos.device}")
    n = cos.shape[-1]
    if n < 1 or 2 * n > x.shape[-1]:
        raise ValueError(
            f"cos.shape[-1] (number of rotated pairs) must be in 1 .. x.shape[-1] // 2 = "
            f"{x.shape[-1] // 2}, got {n}"
        )
    if cos.shape[-2] != x.shape[-2]:
        raise ValueError(
            f"cos/sin seq dimension must equal x's sequence length {x.shape[-2]}, got "
            f"{cos.shape[-2]} (for (batch, seq, heads, head_dim) tensors pass seq_dim=-3)"
        )
    lead, x_lead = cos.shape[:-1], x.shape[:-1]
    # cheaper than torch.broadcast_shapes, which dominated the cost of small calls
    if len(lead) > len(x_lead) or any(
        c not in (1, d) for c, d in zip(reversed(lead), reversed(x_lead), strict=False)
    ):
        raise ValueError(
            f"cos/sin shape {tuple(cos.shape)} must broadcast to x's leading dims "
            f"{tuple(x_lead)} (+ n_freq)"
        )


def seq_last(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, seq_dim: int):
    """Views with the sequence at dim -2: ``(x', cos', sin', undo)`` (no copies).

    ``seq_dim`` is -2 (``(..., seq, head_dim)``) or -3 (``(..., seq, heads, head_dim)``,
    positive indices allowed); ``undo(y)`` puts a result back in ``x``'s layout.
    """
    check_tensor("x", x, min_ndim=2, floating=True)
    check_int("seq_dim", seq_dim)
    dim = seq_dim - x.ndim if seq_dim >= 0 else seq_dim
    if dim not in (-2, -3) or -dim > x.ndim:
        raise ValueError(
            f"seq_dim must be -2 ((..., seq, head_dim)) or -3 ((..., seq, heads, head_dim)) "
            f"for x of shape {tuple(x.shape)}, got {seq_dim}"
        )
    if dim == -2:
        return x, cos, sin, lambda y: y
    if cos.ndim >= 3:  # per-batch tables (..., seq, n): one row for every head
        cos, sin = cos.unsqueeze(-3), sin.unsqueeze(-3)
    return x.transpose(-3, -2), cos, sin, lambda y: y.transpose(-3, -2)


def apply_rope(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    *,
    layout: str = "half",
    seq_dim: int = -2,
) -> torch.Tensor:
    """Rotate the first ``2 n`` features of ``x`` by the angles in ``cos``/``sin``.

    With ``n = cos.shape[-1]`` pairs and pair ``k = (a_k, b_k)``:
    ``a_k' = a_k cos_k - b_k sin_k`` and ``b_k' = b_k cos_k + a_k sin_k``, where
    ``(a_k, b_k) = (x_k, x_{k+n})`` for ``layout="half"`` and ``(x_2k, x_2k+1)`` for
    ``layout="interleaved"``. Features ``2n ..`` pass unchanged (partial rotary).
    Each kernel computes in float32 for half-precision ``x`` (else in ``x``'s dtype); for
    half precision the tables are rounded to ``x``'s dtype, and the result is within
    ``1.5 eps (|a_k| + |b_k|)`` of the exact rotation (``eps`` of ``x``'s dtype), the
    accuracy of Hugging Face's formula.
    Differentiable in ``x``, ``cos`` and ``sin``, and under ``torch.func`` transforms
    (``grad``, ``vmap``, ``jacrev``, ``jvp``) and forward-mode AD.

    Args:
        x: ``(..., seq, head_dim)`` floating tensor (``(..., seq, heads, head_dim)`` with
            ``seq_dim=-3``).
        cos, sin: ``(seq, n)`` or broadcastable ``(..., seq, n)`` (:func:`rope_cos_sin`).
        layout: ``"half"`` or ``"interleaved"``.
        seq_dim: dimension of ``x`` that holds the sequence, -2 (default) or -3.

    Returns:
        Tensor of ``x``'s shape and dtype.
    """
    check_choice("layout", layout, ROPE_LAYOUTS)
    xs, cos, sin, undo = seq_last(x, cos, sin, seq_dim)
    _check_tables(xs, cos, sin)
    if torch.compiler.is_compiling() or _transformed(xs, cos, sin):
        # torch.compile fuses the plain formula into one kernel by itself; torch.func
        # transforms see ordinary differentiable, batchable operations.
        return undo(_rope_formula(xs, cos, sin, layout))
    if _needs_autograd(xs, cos, sin):
        return undo(_RopeFunction.apply(xs, cos, sin, layout))
    return undo(_rope_fast(xs, cos, sin, layout))  # no autograd bookkeeping per call


def rope_rotation_matrix(
    position: float,
    head_dim: int,
    *,
    base: float = 10_000.0,
    inv_freq: torch.Tensor | None = None,
    layout: str = "interleaved",
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The explicit ``head_dim x head_dim`` RoPE rotation ``R_m`` (float64 by default).

    For ``layout="interleaved"`` it is block diagonal with the 2 x 2 blocks
    ``[[cos m theta_k, -sin m theta_k], [sin m theta_k, cos m theta_k]]`` on pairs
    ``(2k, 2k+1)``; ``layout="half"`` permutes rows and columns
    (:func:`posenc_lib.rope_convert.rope_permutation`). ``R_m x`` equals
    :func:`apply_rope` on ``x``. Angles are computed in float64 from ``inv_freq``
    (default ``base ** (-2k / head_dim)``). For teaching: O(d^2) memory.

    Args:
        position: the position ``m``, a finite int or float.
        head_dim: even feature dimension ``d``, >= 2.
        base: frequency base, finite and > 1 (ignored when ``inv_freq`` is given).
        inv_freq: optional ``(head_dim // 2,)`` frequencies (e.g. from :func:`rope_inv_freq`).
        layout: ``"interleaved"`` or ``"half"``.
        dtype: floating dtype of the result.

    Returns:
        ``(head_dim, head_dim)`` orthogonal matrix on ``inv_freq``'s device (CPU by default).
    """
    check_int("head_dim", head_dim, minimum=2, even=True)
    check_choice("layout", layout, ROPE_LAYOUTS)
    check_float_dtype("dtype", dtype)
    if isinstance(position, bool) or not isinstance(position, int | float):
        raise TypeError(
            f"position must be an int or a float, got {type(position).__name__} ({position!r})"
        )
    if not math.isfinite(position):
        raise ValueError(f"position must be finite (no nan or inf), got {position}")
    if inv_freq is None:
        inv_freq = base_inv_freq(head_dim, check_base(base))
    check_tensor("inv_freq", inv_freq, ndim=1, floating=True)
    if inv_freq.shape[0] != head_dim // 2:
        raise ValueError(
            f"inv_freq must have head_dim // 2 = {head_dim // 2} entries, got {inv_freq.shape[0]}"
        )
    angle = position * inv_freq.to(torch.float64)
    c, s = angle.cos(), angle.sin()
    blocks = torch.stack((torch.stack((c, -s), -1), torch.stack((s, c), -1)), -2)  # (n, 2, 2)
    r = torch.block_diag(*blocks)
    if layout == "half":
        perm = torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))
        r = r[perm][:, perm]
    return r.to(device=inv_freq.device, dtype=dtype)


def __getattr__(name: str):
    # Names that lived here before the module was split; resolved lazily, since
    # rope_module and rope_convert import this module.
    if name == "RotaryEmbedding":
        from .rope_module import RotaryEmbedding

        return RotaryEmbedding
    if name == "rope_permutation":
        from .rope_convert import rope_permutation

        return rope_permutation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
