"""The rotation behind :func:`posenc_lib.rope.apply_rope`: fast kernels and derivatives.

:class:`_RopeFunction` is a ``torch.autograd.Function`` in the ``setup_context`` style
with ``generate_vmap_rule = True`` and a ``jvp``, so ``apply_rope`` works under
``torch.func.grad``, ``vmap``, ``jacrev``, ``jvp`` and forward-mode AD, with exact
derivatives for ``x``, ``cos`` and ``sin``. Under a ``torch.func`` transform or
``torch.compile`` the plain formula :func:`_rope_formula` runs instead.
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwad

_HALF = (torch.float16, torch.bfloat16)


def _transformed(*tensors) -> bool:
    return any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def _needs_autograd(*tensors) -> bool:
    """Backward or forward-mode AD may be asked of this call."""
    if fwad._current_level >= 0:  # inside forward_ad.dual_level()
        return True
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _pairs(x, n, layout):
    if layout == "half":
        return x[..., :n], x[..., n : 2 * n]
    return x[..., 0 : 2 * n : 2], x[..., 1 : 2 * n : 2]


def _rope_formula(x, cos, sin, layout):
    """The formula as written, one temporary per operation (differentiable everywhere)."""
    n = cos.shape[-1]
    work = torch.float32 if x.dtype in _HALF else x.dtype
    a, b = _pairs(x.to(work), n, layout)
    c, s = cos.to(work), sin.to(work)
    if layout == "half":
        out = torch.cat((a * c - b * s, b * c + a * s), dim=-1)
    else:
        out = torch.stack((a * c - b * s, b * c + a * s), dim=-1).flatten(-2)
    out = out.to(x.dtype)
    return torch.cat((out, x[..., 2 * n :]), dim=-1) if x.shape[-1] > 2 * n else out


def _rope_fast(x, cos, sin, layout):
    """Four kernels over ``x``, no Python loop, no temporary the size of ``x``.

    ``out_a = a * c`` then ``out_a -= b * s`` in place (same for ``out_b``): RoPE is
    memory bound, so every avoided pass over the data counts. For half-precision ``x``
    the tables are rounded to ``x``'s dtype first (as Hugging Face does): each kernel
    computes in float32 and rounds its result, so ``a * c`` is rounded once before the
    second product is added. Mixed-dtype kernels would avoid that rounding but run
    several times slower on a CPU; the error stays within 1.5 ``eps (|a| + |b|)``.
    """
    n = cos.shape[-1]
    out = torch.empty_like(x)
    a, b = _pairs(x, n, layout)
    out_a, out_b = _pairs(out, n, layout)
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    torch.mul(a, c, out=out_a)
    out_a.addcmul_(b, s, value=-1)
    torch.mul(b, c, out=out_b)
    out_b.addcmul_(a, s)
    if x.shape[-1] > 2 * n:
        out[..., 2 * n :] = x[..., 2 * n :]
    return out


def _reduce_to(t, shape):
    """Sum a broadcast gradient back to ``shape``."""
    extra = t.ndim - len(shape)
    dims = tuple(range(extra)) + tuple(
        i + extra for i, size in enumerate(shape) if size == 1 and t.shape[i + extra] != 1
    )
    return (t.sum(dims, keepdim=True) if dims else t).reshape(shape)


def _table_grads(x, grad, cos, sin, layout):
    """d loss / d cos and d sin: ``a' = a c - b s``, ``b' = b c + a s``."""
    n = cos.shape[-1]
    work = torch.promote_types(torch.promote_types(x.dtype, grad.dtype), torch.float32)
    a, b = (t.to(work) for t in _pairs(x, n, layout))
    ga, gb = (t.to(work) for t in _pairs(grad, n, layout))
    gc = _reduce_to(ga * a + gb * b, cos.shape).to(cos.dtype)
    gs = _reduce_to(gb * a - ga * b, sin.shape).to(sin.dtype)
    return gc, gs


class _RopeFunction(torch.autograd.Function):
    """RoPE with hand-written derivatives. The rotation is orthogonal, so the gradient
    for ``x`` is the same rotation by the opposite angle (``sin`` negated); ``x`` itself is
    saved only when ``cos`` or ``sin`` needs a gradient."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, cos, sin, layout):
        if _transformed(x, cos, sin):  # under vmap: batchable operations only
            return _rope_formula(x, cos, sin, layout)
        return _rope_fast(x, cos, sin, layout)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, cos, sin, layout = inputs
        ctx.layout = layout
        tables_grad = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        ctx.save_for_backward(cos, sin, x if tables_grad else None)
        ctx.save_for_forward(x, cos, sin)

    @staticmethod
    def backward(ctx, grad):
        cos, sin, x = ctx.saved_tensors
        # Through apply() again, so that double backward works too.
        gx = _RopeFunction.apply(grad, cos, -sin, ctx.layout) if ctx.needs_input_grad[0] else None
        gc = gs = None
        if x is not None:
            gc, gs = _table_grads(x, grad, cos, sin, ctx.layout)
        return gx, gc, gs, None

    @staticmethod
    def jvp(ctx, x_t, cos_t, sin_t, _layout_t):
        x, cos, sin = ctx.saved_tensors
        out = None if x_t is None else _RopeFunction.apply(x_t, cos, sin, ctx.layout)
        if cos_t is not None or sin_t is not None:
            zero = torch.zeros_like(cos)
            c_t = zero if cos_t is None else cos_t
            s_t = zero if sin_t is None else sin_t
            # d(a c - b s) = a dc - b ds: the formula with (dc, ds) in place of (c, s),
            # the features beyond the rotated pairs contributing nothing.
            n = cos.shape[-1]
            x_rot = torch.cat((x[..., : 2 * n], torch.zeros_like(x[..., 2 * n :])), dim=-1)
            extra = _rope_formula(x_rot, c_t, s_t, ctx.layout)
            out = extra if out is None else out + extra
        return out
