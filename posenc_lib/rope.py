"""Rotary position embedding, RoPE (Su et al., 2021, RoFormer).

RoPE rotates each pair of query/key features by an angle proportional to the position:
pair ``k`` of a token at position ``m`` turns by ``m * theta_k`` with
``theta_k = base ** (-2k / d)``. Since rotations compose, ``<R_m q, R_n k> = <q, R_{n-m} k>``:
the attention score sees only the relative position ``n - m``.

Two feature layouts pair the features differently (same maths, permuted features):

- ``"half"`` (GPT-NeoX, Llama, the library default): feature ``k`` with ``k + n``
  (``n = number of pairs``), implemented with :func:`rotate_half`;
- ``"interleaved"`` (RoFormer, GPT-J, Meta's complex form): ``2k`` with ``2k + 1``, i.e.
  ``(x_2k + i x_2k+1) * exp(i m theta_k)``.

:func:`rope_permutation` maps one layout to the other. Angles are computed in float32 and
cast at the end; :mod:`posenc_lib.rope_scaling` holds the context-extension rules.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import (
    as_positions,
    check_choice,
    check_float_dtype,
    check_int,
    check_positive_float,
    check_tensor,
)
from .rope_scaling import ROPE_INIT_FUNCTIONS, base_inv_freq, normalize_rope_scaling

__all__ = [
    "ROPE_LAYOUTS",
    "rope_inv_freq",
    "rope_angles",
    "rope_cos_sin",
    "rotate_half",
    "apply_rope",
    "rope_permutation",
    "rope_rotation_matrix",
    "RotaryEmbedding",
]

ROPE_LAYOUTS = ("half", "interleaved")


def rope_inv_freq(
    head_dim: int, *, base: float = 10_000.0, scaling=None, seq_len=None, device=None
) -> tuple[torch.Tensor, float]:
    """RoPE inverse frequencies ``theta_i = base ** (-2 i / head_dim)`` and attention scale.

    ``scaling`` is a Hugging-Face-style ``rope_scaling`` dict (``rope_type`` one of
    ``"default", "linear", "ntk", "dynamic", "yarn", "llama3"``, see
    :mod:`posenc_lib.rope_scaling`); ``seq_len`` is the current length, used by
    ``"dynamic"`` only. Computed in float64, returned as float32.

    Args:
        head_dim: number of rotated features ``d`` (even, >= 2; >= 4 for NTK rules).
        base: frequency base ``b``, finite and > 0.
        scaling: ``None`` or a ``rope_scaling`` dict.
        seq_len: ``None`` or int >= 1.
        device: device of the result.

    Returns:
        ``(inv_freq, attention_scaling)``: float32 ``(head_dim // 2,)`` and a float that
        multiplies ``cos`` and ``sin`` (1 except for YaRN).
    """
    check_int("head_dim", head_dim, minimum=2, even=True)
    base = check_positive_float("base", base)
    if seq_len is not None:
        check_int("seq_len", seq_len, minimum=1)
    params = normalize_rope_scaling(scaling)
    rope_type = "default" if params is None else params["rope_type"]
    if rope_type in ("ntk", "dynamic") and head_dim < 4:
        raise ValueError(f"head_dim must be >= 4 for rope_type {rope_type!r}, got {head_dim}")
    if rope_type == "yarn" and base == 1.0:
        raise ValueError("base must be != 1 for rope_type 'yarn' (its ramp divides by ln(base))")
    inv_freq, attention_scaling = ROPE_INIT_FUNCTIONS[rope_type](head_dim, base, params, seq_len)
    return inv_freq.to(device=device, dtype=torch.float32), float(attention_scaling)


def rope_angles(positions, inv_freq: torch.Tensor) -> torch.Tensor:
    """Angles ``phi[m, k] = positions[m] * inv_freq[k]`` in float32, ``(seq, n_freq)``.

    ``positions``: int ``n`` (``0 .. n-1``) or a 1-D tensor (fractional values allowed).
    The result is on ``inv_freq``'s device.
    """
    check_tensor("inv_freq", inv_freq, ndim=1, floating=True)
    pos = as_positions(positions, device=inv_freq.device)
    return torch.outer(pos, inv_freq.to(torch.float32))


def rope_cos_sin(
    positions,
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
    check_tensor("x", x, min_ndim=2, floating=True)
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
            f"cos/sin seq dimension (-2) must equal x's, got {cos.shape[-2]} and {x.shape[-2]}"
        )
    try:
        lead = torch.broadcast_shapes(cos.shape[:-1], x.shape[:-1])
    except RuntimeError:
        lead = None
    if lead != x.shape[:-1]:
        raise ValueError(
            f"cos/sin shape {tuple(cos.shape)} must broadcast to x's leading dims "
            f"{tuple(x.shape[:-1])} (+ n_freq)"
        )
    return n


def apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, layout: str = "half"
) -> torch.Tensor:
    """Rotate the first ``2 n`` features of ``x`` by the angles in ``cos``/``sin``.

    With ``n = cos.shape[-1]`` pairs and pair ``k = (a_k, b_k)``:
    ``a_k' = a_k cos_k - b_k sin_k`` and ``b_k' = b_k cos_k + a_k sin_k``, where
    ``(a_k, b_k) = (x_k, x_{k+n})`` for ``layout="half"`` and ``(x_2k, x_2k+1)`` for
    ``layout="interleaved"``. Features ``2n ..`` pass unchanged (partial rotary).
    Arithmetic in float32 for half-precision ``x`` (else in ``x``'s dtype).

    Args:
        x: ``(..., seq, head_dim)`` floating tensor.
        cos, sin: ``(seq, n)`` or broadcastable ``(..., seq, n)`` (:func:`rope_cos_sin`).
        layout: ``"half"`` or ``"interleaved"``.

    Returns:
        Tensor of ``x``'s shape and dtype.
    """
    check_choice("layout", layout, ROPE_LAYOUTS)
    _check_tables(x, cos, sin)
    if cos.requires_grad or sin.requires_grad or torch.compiler.is_compiling():
        # Learnable angles (autograd must see every op), or torch.compile, which fuses
        # the plain formula into one kernel by itself.
        return _rope_formula(x, cos, sin, layout)
    if x.requires_grad and torch.is_grad_enabled():
        return _RopeFunction.apply(x, cos, sin, layout)
    return _rope_no_grad(x, cos, sin, layout)


def _rope_formula(x, cos, sin, layout):
    """The formula as written, one temporary per operation (differentiable everywhere)."""
    n = cos.shape[-1]
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xr, rest = x[..., : 2 * n].to(work), x[..., 2 * n :]
    c, s = cos.to(work), sin.to(work)
    if layout == "half":
        a, b = xr[..., :n], xr[..., n:]
        out = torch.cat((a * c - b * s, b * c + a * s), dim=-1)
    else:
        a, b = xr[..., 0::2], xr[..., 1::2]
        out = torch.stack((a * c - b * s, b * c + a * s), dim=-1).flatten(-2)
    return torch.cat((out.to(x.dtype), rest), dim=-1) if rest.shape[-1] else out.to(x.dtype)


def _rotate_into(out, x, cos, sin, layout):
    """Write the rotation of ``x`` into ``out`` with four in-place kernels and no
    temporaries: RoPE is memory-bound, so every avoided pass over the data counts."""
    n = cos.shape[-1]
    if layout == "half":
        a, b, out_a, out_b = x[..., :n], x[..., n : 2 * n], out[..., :n], out[..., n : 2 * n]
    else:
        a, b = x[..., 0 : 2 * n : 2], x[..., 1 : 2 * n : 2]
        out_a, out_b = out[..., 0 : 2 * n : 2], out[..., 1 : 2 * n : 2]
    torch.mul(a, cos, out=out_a)
    out_a.addcmul_(b, sin, value=-1)
    torch.mul(b, cos, out=out_b)
    out_b.addcmul_(a, sin)
    if out.shape[-1] > 2 * n:
        out[..., 2 * n :] = x[..., 2 * n :]
    return out


def _rope_no_grad(x, cos, sin, layout):
    if x.dtype not in (torch.float16, torch.bfloat16):
        return _rotate_into(torch.empty_like(x), x, cos.to(x.dtype), sin.to(x.dtype), layout)
    # Half precision: float32 arithmetic on one block of positions at a time (about
    # 256 KB of float32 per block), so the upcast copy stays in cache.
    out = torch.empty_like(x)
    cos, sin = cos.float(), sin.float()
    seq = x.shape[-2]
    block = max(16, (1 << 16) // max(1, x[..., 0, :].numel()))
    for start in range(0, seq, block):
        rows = slice(start, start + block)
        xs = x[..., rows, :].float()
        out[..., rows, :] = _rotate_into(
            torch.empty_like(xs), xs, cos[..., rows, :], sin[..., rows, :], layout
        )
    return out


class _RopeFunction(torch.autograd.Function):
    """RoPE with a hand-written backward: the rotation is orthogonal, so the gradient
    is the same rotation by the opposite angle (``sin`` negated)."""

    @staticmethod
    def forward(ctx, x, cos, sin, layout):
        ctx.save_for_backward(cos, sin)
        ctx.layout = layout
        return _rope_no_grad(x, cos, sin, layout)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        # Through apply() again, so that double backward works too.
        return _RopeFunction.apply(grad, cos, -sin, ctx.layout), None, None, None


def rope_permutation(head_dim: int, *, inverse: bool = False, device=None) -> torch.Tensor:
    """Feature permutation from the interleaved to the half layout.

    ``perm = [0, 2, 4, .., 1, 3, 5, ..]``, so ``x[..., perm]`` moves pair ``(2k, 2k+1)`` to
    ``(k, k + d/2)`` and
    ``apply_rope(x[..., perm], c, s, layout="half") == apply_rope(x, c, s,
    layout="interleaved")[..., perm]``. ``inverse=True`` gives the inverse permutation
    (half -> interleaved).
    """
    check_int("head_dim", head_dim, minimum=2, even=True)
    perm = torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))
    if inverse:
        perm = torch.argsort(perm)
    return perm.to(device)


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
    (:func:`rope_permutation`). ``R_m x`` equals :func:`apply_rope` on ``x``. Angles are
    computed in float64 from ``inv_freq`` (default ``base ** (-2k / head_dim)``).
    For teaching: O(d^2) memory, use :func:`apply_rope` in models.

    Args:
        position: the position ``m``, a finite int or float.
        head_dim: even feature dimension ``d``, >= 2.
        base: frequency base, finite and > 0 (ignored when ``inv_freq`` is given).
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
        inv_freq = base_inv_freq(head_dim, base)
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
        perm = rope_permutation(head_dim)
        r = r[perm][:, perm]
    return r.to(device=inv_freq.device, dtype=dtype)


class RotaryEmbedding(nn.Module):
    """RoPE (Su et al., 2021) for queries and keys ``(batch, heads, seq, head_dim)``.

    ``forward(q, k)`` returns ``(R_m q_m, R_m k_m)`` for each position ``m``: pair ``k`` of
    the first ``rotary_dim`` features turns by ``m * theta_k`` with
    ``theta_k = base ** (-2k / rotary_dim)`` (or the frequencies of a ``scaling`` rule), so
    ``<R_m q, R_n k> = <q, R_{n-m} k>``. The float32 ``cos``/``sin`` tables are cached per
    device and length, and cast to ``q``'s dtype inside :func:`apply_rope`. ``inv_freq`` is a
    non-persistent buffer: it follows ``.to(device)``.

    Args:
        head_dim: features per head (even).
        base: frequency base.
        scaling: ``None`` or a ``rope_scaling`` dict (:func:`rope_inv_freq`); with
            ``"dynamic"`` the frequencies are recomputed for each length beyond
            ``original_max_position_embeddings``.
        layout: ``"half"`` or ``"interleaved"``.
        rotary_dim: rotate only the first ``rotary_dim`` features (even, <= head_dim);
            default ``head_dim``. Frequencies use ``rotary_dim`` as ``d``.
    """

    def __init__(
        self,
        head_dim: int,
        *,
        base: float = 10_000.0,
        scaling=None,
        layout: str = "half",
        rotary_dim: int | None = None,
    ):
        super().__init__()
        self.head_dim = check_int("head_dim", head_dim, minimum=2, even=True)
        rotary_dim = head_dim if rotary_dim is None else rotary_dim
        self.rotary_dim = check_int("rotary_dim", rotary_dim, minimum=2, even=True)
        if rotary_dim > head_dim:
            raise ValueError(f"rotary_dim must be <= head_dim = {head_dim}, got {rotary_dim}")
        self.layout = check_choice("layout", layout, ROPE_LAYOUTS)
        self.base = check_positive_float("base", base)
        self._cache: dict = {}
        self.register_buffer("inv_freq", torch.empty(rotary_dim // 2), persistent=False)
        self.set_scaling(scaling)

    def set_scaling(self, scaling) -> None:
        """Switch the context-extension rule (``None`` for plain RoPE); clears the cache."""
        inv_freq, self.attention_scaling = rope_inv_freq(
            self.rotary_dim, base=self.base, scaling=scaling
        )
        self.scaling = normalize_rope_scaling(scaling)
        self.inv_freq = inv_freq.to(self.inv_freq.device)
        self._cache.clear()

    @property
    def _dynamic(self) -> bool:
        return self.scaling is not None and self.scaling["rope_type"] == "dynamic"

    def _freqs(self, seq_len: int) -> tuple[torch.Tensor, float]:
        if not self._dynamic:
            return self.inv_freq, self.attention_scaling
        inv_freq, att = rope_inv_freq(
            self.rotary_dim,
            base=self.base,
            scaling=self.scaling,
            seq_len=seq_len,
            device=self.inv_freq.device,
        )
        return inv_freq, att

    def cos_sin(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 tables for positions ``0 .. length-1`` (cached per device and length)."""
        check_int("length", length, minimum=1)
        key_len = (
            max(length, self.scaling["original_max_position_embeddings"]) if self._dynamic else None
        )
        key = (str(self.inv_freq.device), key_len)
        hit = self._cache.get(key)
        if hit is None or hit[0].shape[0] < length:
            if len(self._cache) >= 8:
                self._cache.clear()
            # grow geometrically so token-by-token decoding rebuilds the table O(log L) times
            size = length if hit is None else max(length, 2 * hit[0].shape[0])
            size = min(size, key_len) if key_len is not None else size
            inv_freq, att = self._freqs(length)
            hit = rope_cos_sin(size, inv_freq, attention_scaling=att)
            self._cache[key] = hit
        return hit[0][:length], hit[1][:length]

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        positions: torch.Tensor | None = None,
        *,
        offset: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q`` ``(batch, heads_q, seq, head_dim)`` and ``k`` ``(batch, heads_k, seq,
        head_dim)``; positions default to ``offset .. offset + seq - 1`` (KV-cache decoding).
        ``positions`` may be ``(seq,)`` or per-sequence ``(batch, seq)``.
        """
        for name, t in (("q", q), ("k", k)):
            check_tensor(name, t, ndim=4, floating=True)
            if t.shape[-1] != self.head_dim:
                raise ValueError(
                    f"{name}.shape[-1] must be head_dim = {self.head_dim}, got {t.shape[-1]}"
                )
        if q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
            raise ValueError(
                f"q and k must share batch and seq, got {tuple(q.shape)} and {tuple(k.shape)}"
            )
        offset = check_int("offset", offset, minimum=0)
        seq = q.shape[2]
        if positions is None:
            cos, sin = self.cos_sin(offset + seq)
            cos, sin = cos[offset:], sin[offset:]
        else:
            if offset:
                raise ValueError("give either positions or offset, not both")
            check_tensor("positions", positions)
            if positions.ndim not in (1, 2) or positions.shape[-1] != seq:
                raise ValueError(
                    f"positions must be (seq,) or (batch, seq) with seq = {seq}, "
                    f"got shape {tuple(positions.shape)}"
                )
            flat = as_positions(positions.reshape(-1), device=self.inv_freq.device)
            length = max(int(flat.max().ceil()) + 1, 1) if flat.numel() else 1
            inv_freq, att = self._freqs(length)
            cos, sin = rope_cos_sin(flat, inv_freq, attention_scaling=att)
            if positions.ndim == 2:
                cos = cos.reshape(positions.shape[0], 1, seq, -1)
                sin = sin.reshape(positions.shape[0], 1, seq, -1)
        cos, sin = cos.to(q.device), sin.to(q.device)
        return (
            apply_rope(q, cos, sin, layout=self.layout),
            apply_rope(k, cos, sin, layout=self.layout),
        )

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, rotary_dim={self.rotary_dim}, base={self.base}, "
            f"layout={self.layout!r}, scaling={self.scaling}"
        )
