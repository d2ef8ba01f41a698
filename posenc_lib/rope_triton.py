"""A fused RoPE kernel in Triton, with autograd, and a dispatcher that picks it when it can.

Applying RoPE is *memory bound*: per element it does four multiply-adds but moves
``2 * itemsize`` bytes (one read, one write). Eager PyTorch code such as Hugging Face's
``q * cos + rotate_half(q) * sin`` launches several kernels and writes intermediate tensors
(``rotate_half``'s halves and the concatenation, the two products), so it moves several
times the bytes of the answer. The fused kernel reads each element of ``x`` once, reads a
``cos``/``sin`` tile once per block of positions (shared by all heads), and writes the result
once, so its ideal time is that of a same-size copy.

The rotation of the pair :math:`(x_1, x_2)` by the angle :math:`\\theta = p\\,\\omega_k` is

.. math::
    y_1 = x_1 \\cos\\theta - x_2 \\sin\\theta, \\qquad y_2 = x_2 \\cos\\theta + x_1 \\sin\\theta,

with pairs ``(k, k + r/2)`` (``layout="half"``) or ``(2k, 2k + 1)`` (``layout="interleaved"``)
over the first ``r = 2 * cos.shape[-1]`` features (partial rotary leaves the rest unchanged).
A rotation is orthogonal, so the gradient is the rotation by :math:`-\\theta`: the backward
pass is the same kernel with ``-sin``. Su et al., *RoFormer* (2021).

Triton is imported lazily: this module imports without it, and :func:`apply_rope_fast`
falls back to :func:`posenc_lib.rope.apply_rope` when Triton or a GPU is missing. On CPU
tensors the kernel runs in Triton's interpreter (slow, for tests only); the dispatcher uses
it on the CPU only when the environment variable ``TRITON_INTERPRET=1`` is set.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

from ._validation import check_choice, check_tensor
from .rope import ROPE_LAYOUTS, _transformed, apply_rope, seq_last

__all__ = ["apply_rope_fused", "apply_rope_fast", "triton_available"]


@functools.cache
def triton_available() -> bool:
    """True if the ``triton`` package can be found, without importing it.

    Returns:
        bool; it does not say a GPU is present (see :func:`apply_rope_fast`).
    """
    return importlib.util.find_spec("triton") is not None


def _kernels():
    from . import _rope_triton_kernels  # imports triton; only reached when it is installed

    return _rope_triton_kernels


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _check(x, cos, sin, layout):
    check_tensor("x", x, min_ndim=2, floating=True)
    check_tensor("cos", cos, floating=True)
    check_tensor("sin", sin, floating=True)
    check_choice("layout", layout, ROPE_LAYOUTS)
    if cos.shape != sin.shape:
        raise ValueError(
            f"cos and sin must have the same shape, got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    if cos.ndim < 2 or any(d != 1 for d in cos.shape[:-2]):
        raise ValueError(
            "cos must have shape (seq, rotary_dim // 2) (leading size-1 dims "
            f"allowed), got {tuple(cos.shape)}"
        )
    seq, half = cos.shape[-2], cos.shape[-1]
    if x.shape[-2] != seq:
        raise ValueError(
            f"x.shape[-2] (seq) must equal cos.shape[-2] = {seq}, got x of shape {tuple(x.shape)}"
        )
    if half < 1 or 2 * half > x.shape[-1]:
        raise ValueError(
            f"cos.shape[-1] must be in [1, head_dim // 2] = [1, {x.shape[-1] // 2}], got {half}"
        )
    if cos.device != x.device or sin.device != x.device:
        raise ValueError(
            f"x, cos and sin must be on one device, got {x.device}, {cos.device}, {sin.device}"
        )


def _as_4d(t: torch.Tensor):
    """View ``t`` as ``(batch, heads, seq, dim)`` without copying, or return None."""
    if t.stride(-1) != 1:
        return None
    if t.ndim == 2:
        return t[None, None]
    if t.ndim == 3:
        return t[None]
    if t.ndim == 4:
        return t
    try:
        return t.view(-1, *t.shape[-3:])
    except RuntimeError:
        return None


def _config(seq: int, half: int, n_rows: int, interpreted: bool, interleaved: bool) -> dict:
    block_half = _next_pow2(half)
    if interpreted:  # few, large programs: the interpreter pays per program, not per element
        return {
            "BLOCK_S": min(_next_pow2(seq), 128),
            "ROWS_PER_PROGRAM": min(n_rows, 16),
            "num_warps": 4,
        }
    # Pairs per tile and head. On an H200 (benchmarks/results/cuda-2026-11-26.json, tile
    # sweep) the interleaved layout (pairs adjacent in memory) ran up to 9.2x slower in
    # tiles of 2048 pairs than in the sweep's best tile, most often one of 256 pairs; the
    # half layout stayed within 1.5x of its best from 8k tokens on. "Making it fast" shows
    # both runs.
    pairs = 256 if interleaved else 2048
    block_s = max(1, min(_next_pow2(seq), pairs // block_half))
    n_blocks = -(-seq // block_s)
    rows = 1
    while rows < 8 and rows < n_rows and n_blocks * (-(-n_rows // (2 * rows))) >= 1024:
        rows *= 2
    return {"BLOCK_S": block_s, "ROWS_PER_PROGRAM": rows, "num_warps": 4}


def _launch(x, cos, sin, *, interleaved: bool, conj: bool, out=None, config=None):
    """Run the kernel: ``out = rotate(x)`` (``out`` may be ``x`` for in-place)."""
    x4 = _as_4d(x)
    if x4 is None:
        x4 = _as_4d(x.contiguous())
    if out is None:
        out = torch.empty_like(x)
    o4 = _as_4d(out)
    if o4 is None:  # cannot write through a view: compute aside, then copy into ``out``
        tmp = _launch(x, cos, sin, interleaved=interleaved, conj=conj, config=config)
        return out.copy_(tmp)
    if x.numel() == 0:
        return out
    cos2 = cos.reshape(cos.shape[-2:])
    sin2 = sin.reshape(sin.shape[-2:])
    if cos2.stride(-1) != 1 or sin2.stride(-1) != 1 or cos2.stride(0) != sin2.stride(0):
        cos2, sin2 = cos2.contiguous(), sin2.contiguous()
    batch, heads, seq, head_dim = x4.shape
    half = cos2.shape[-1]
    n_rows = batch * heads
    interpreted = x.device.type != "cuda"
    cfg = dict(_config(seq, half, n_rows, interpreted, interleaved))
    cfg.update(config or {})
    kern = _kernels()
    fn = kern.rope_kernel_interpreted if interpreted else kern.rope_kernel_cuda
    grid = (-(-seq // cfg["BLOCK_S"]), -(-n_rows // cfg["ROWS_PER_PROGRAM"]))
    tail = head_dim - 2 * half
    copy_tail = tail > 0 and o4.data_ptr() != x4.data_ptr()
    fn[grid](
        x4,
        o4,
        cos2,
        sin2,
        n_rows,
        heads,
        seq,
        x4.stride(0),
        x4.stride(1),
        x4.stride(2),
        o4.stride(0),
        o4.stride(1),
        o4.stride(2),
        cos2.stride(0),
        HALF=half,
        HEAD_DIM=head_dim,
        BLOCK_HALF=_next_pow2(half),
        BLOCK_S=cfg["BLOCK_S"],
        ROWS_PER_PROGRAM=cfg["ROWS_PER_PROGRAM"],
        INTERLEAVED=interleaved,
        CONJ=conj,
        COPY_TAIL=copy_tail,
        BLOCK_TAIL=_next_pow2(max(tail, 1)),
        num_warps=cfg["num_warps"],
    )
    return out


class _FusedRope(torch.autograd.Function):
    """Autograd wrapper: forward rotates by +angle, backward by -angle (no tensor saved but
    the tables). Gradients flow to ``x`` only; ``cos`` and ``sin`` are treated as constants."""

    @staticmethod
    def forward(ctx, x, cos, sin, interleaved, inplace, config):
        out = _launch(
            x,
            cos,
            sin,
            interleaved=interleaved,
            conj=False,
            out=x if inplace else None,
            config=config,
        )
        if inplace:
            ctx.mark_dirty(x)
        ctx.save_for_backward(cos, sin)
        ctx.interleaved = interleaved
        ctx.config = config
        return out

    @staticmethod
    def backward(ctx, grad_out):
        cos, sin = ctx.saved_tensors
        grad_x = _launch(
            grad_out, cos, sin, interleaved=ctx.interleaved, conj=True, config=ctx.config
        )
        return grad_x, None, None, None, None, None


def apply_rope_fused(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    *,
    layout: str = "half",
    inplace: bool = False,
    _config: dict | None = None,
) -> torch.Tensor:
    """Apply RoPE with the fused Triton kernel (CUDA; CPU tensors run in the interpreter).

    Computes, for each position ``p`` and pair ``k < r/2`` with ``r = 2 * cos.shape[-1]``,
    ``y1 = x1 cos - x2 sin`` and ``y2 = x2 cos + x1 sin`` (float32 arithmetic, result in
    ``x.dtype``); features ``r..head_dim`` are copied unchanged (partial rotary).

    Args:
        x: ``(..., seq, head_dim)`` float tensor (float32, float16 or bfloat16), any strides
            with a unit stride on the feature axis (others are copied first).
        cos, sin: ``(seq, r // 2)`` tables from :func:`posenc_lib.rope.rope_cos_sin`
            (float32 recommended; read in float32). Treated as constants by autograd.
        layout: ``"half"`` (pairs ``k, k + r/2``) or ``"interleaved"`` (``2k, 2k + 1``).
        inplace: overwrite ``x`` and return it (autograd-safe on non-leaf tensors).

    Returns:
        Tensor shaped like ``x`` (``x`` itself when ``inplace``).

    Raises:
        ModuleNotFoundError: Triton is not installed.
        ValueError: shapes, devices or ``layout`` are invalid.
        TypeError: ``x``, ``cos`` or ``sin`` has an unsupported dtype.
    """
    _check(x, cos, sin, layout)
    if not triton_available():
        raise ModuleNotFoundError(
            "apply_rope_fused needs the 'triton' package; use "
            "apply_rope_fast, which falls back to apply_rope"
        )
    if cos.requires_grad or sin.requires_grad:
        raise ValueError(
            "apply_rope_fused treats cos and sin as constants; got tables that "
            "require grad (use posenc_lib.apply_rope to differentiate them)"
        )
    return _FusedRope.apply(x, cos, sin, layout == "interleaved", bool(inplace), _config)


def _use_kernel(x, cos, sin) -> bool:
    if not triton_available() or cos.requires_grad or sin.requires_grad:
        return False
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return False
    if x.device.type == "cuda":
        return True
    return x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


def apply_rope_fast(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    *,
    layout: str = "half",
    inplace: bool = False,
    seq_dim: int = -2,
) -> torch.Tensor:
    """Apply RoPE with the fastest available path; same maths as ``apply_rope``.

    Uses :func:`apply_rope_fused` for CUDA tensors when Triton is installed (and for CPU
    tensors when ``TRITON_INTERPRET=1``, for tests); otherwise
    :func:`posenc_lib.rope.apply_rope` (with ``x.copy_`` of its result when ``inplace``).
    Arguments as in :func:`apply_rope_fused`, plus ``seq_dim`` (-2, or -3 for
    ``(batch, seq, heads, head_dim)`` tensors, which the kernel reads through strides,
    without a copy). Tables that require grad, float64 inputs, tables with a batch
    dimension, ``torch.compile`` and ``torch.func`` transforms take the reference path.
    :class:`~posenc_lib.rope_module.RotaryEmbedding` calls this function.

    Returns:
        Tensor of ``x``'s shape and dtype (``x`` itself when ``inplace``).
    """
    xs, cs, ss, undo = seq_last(x, cos, sin, seq_dim)
    check_tensor("cos", cs, floating=True)
    check_tensor("sin", ss, floating=True)
    batched_tables = cs.ndim > 2 and any(d != 1 for d in cs.shape[:-2])
    plain = not (torch.compiler.is_compiling() or _transformed(x, cos, sin))
    if plain and not batched_tables and _use_kernel(xs, cs, ss):
        out = apply_rope_fused(xs, cs, ss, layout=layout, inplace=inplace)
        return x if inplace else undo(out)
    y = apply_rope(x, cos, sin, layout=layout, seq_dim=seq_dim)
    return x.copy_(y) if inplace else y
