"""Triton source of the fused RoPE kernel (private; imported lazily by ``rope_triton``).

This module imports :mod:`triton` at the top, so only import it when Triton is installed.
The same Python function is wrapped twice: :func:`triton.jit` for CUDA tensors and
Triton's interpreter (:class:`triton.runtime.interpreter.InterpretedFunction`) for CPU
tensors, which is how the kernel is tested on machines without a GPU.
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

__all__ = ["rope_kernel_cuda", "rope_kernel_interpreted"]


def _rope_kernel(
    x_ptr,
    out_ptr,
    cos_ptr,
    sin_ptr,
    n_rows,
    n_heads,
    seq_len,
    x_stride_b,
    x_stride_h,
    x_stride_s,
    out_stride_b,
    out_stride_h,
    out_stride_s,
    cs_stride_s,
    HALF: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
    BLOCK_S: tl.constexpr,
    ROWS_PER_PROGRAM: tl.constexpr,
    INTERLEAVED: tl.constexpr,
    CONJ: tl.constexpr,
    COPY_TAIL: tl.constexpr,
    BLOCK_TAIL: tl.constexpr,
):
    """Rotate feature pairs of ``x`` viewed as ``(batch, n_heads, seq_len, HEAD_DIM)``.

    Any strides are allowed except on the feature axis (stride 1); ``n_rows`` is
    ``batch * n_heads``.

    Program ``(i, j)`` handles positions ``[i*BLOCK_S, (i+1)*BLOCK_S)`` of rows
    ``[j*ROWS_PER_PROGRAM, (j+1)*ROWS_PER_PROGRAM)``: the cos/sin tile is loaded once and
    reused for every row (head), so the tables cost almost no memory traffic. Pair ``k``
    is ``(k, k + HALF)`` (half layout) or ``(2k, 2k + 1)`` (interleaved). Arithmetic is in
    float32, the result is stored in the dtype of ``out``. ``CONJ`` rotates by minus the
    angle (the backward pass). ``COPY_TAIL`` copies the features past the rotary part
    (partial rotary, out-of-place only).
    """
    pid_s = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    offs_k = tl.arange(0, BLOCK_HALF)
    mask_s = offs_s < seq_len
    mask_sk = mask_s[:, None] & (offs_k < HALF)[None, :]

    cs_offs = offs_s.to(tl.int64)[:, None] * cs_stride_s + offs_k[None, :]
    cos = tl.load(cos_ptr + cs_offs, mask=mask_sk, other=0.0).to(tl.float32)
    sin = tl.load(sin_ptr + cs_offs, mask=mask_sk, other=0.0).to(tl.float32)
    if CONJ:
        sin = -sin

    if INTERLEAVED:
        col1 = 2 * offs_k
        col2 = 2 * offs_k + 1
    else:
        col1 = offs_k
        col2 = offs_k + HALF
    s64 = offs_s.to(tl.int64)[:, None]
    if COPY_TAIL:
        offs_t = 2 * HALF + tl.arange(0, BLOCK_TAIL)
        mask_t = (offs_t < HEAD_DIM)[None, :]

    for r in range(ROWS_PER_PROGRAM):
        row = (pid_n * ROWS_PER_PROGRAM + r).to(tl.int64)
        row_ok = (s64 * 0 + row) < n_rows  # (BLOCK_S, 1); avoids tl.zeros (a @jit helper)
        b = row // n_heads
        h = row % n_heads
        mask = mask_sk & row_ok
        x_row = x_ptr + b * x_stride_b + h * x_stride_h + s64 * x_stride_s
        o_row = out_ptr + b * out_stride_b + h * out_stride_h + s64 * out_stride_s
        x1 = tl.load(x_row + col1[None, :], mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(x_row + col2[None, :], mask=mask, other=0.0).to(tl.float32)
        y1 = x1 * cos - x2 * sin
        y2 = x2 * cos + x1 * sin
        tl.store(o_row + col1[None, :], y1.to(out_ptr.dtype.element_ty), mask=mask)
        tl.store(o_row + col2[None, :], y2.to(out_ptr.dtype.element_ty), mask=mask)
        if COPY_TAIL:
            mask_tail = (mask_s[:, None] & row_ok) & mask_t
            tail = tl.load(x_row + offs_t[None, :], mask=mask_tail, other=0.0)
            tl.store(o_row + offs_t[None, :], tail.to(out_ptr.dtype.element_ty), mask=mask_tail)


rope_kernel_cuda = triton.jit(_rope_kernel)
rope_kernel_interpreted = InterpretedFunction(_rope_kernel)
