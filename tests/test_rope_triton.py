"""Tests of the fused Triton RoPE kernel (posenc_lib.rope_triton).

Without a GPU the kernel runs in Triton's interpreter: ``TRITON_INTERPRET=1`` is set here,
before anything imports triton, so ``triton.jit`` itself produces interpreted kernels (CPU
tensors are also routed to the interpreter explicitly, whatever the environment). With a GPU
the variable is left alone and the ``device`` fixture adds the compiled CUDA path.
Tensors are tiny: the interpreter runs every program in Python.
"""

import math
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

pytest.importorskip("triton")

import posenc_lib as pe  # noqa: E402
from posenc_lib import rope_triton  # noqa: E402
from posenc_lib.rope_triton import apply_rope_fast, apply_rope_fused  # noqa: E402

TOL = {
    torch.float32: {"atol": 1e-5, "rtol": 1e-5},
    torch.float16: {"atol": 2e-3, "rtol": 2e-3},
    torch.bfloat16: {"atol": 1.6e-2, "rtol": 1.6e-2},
}


def _tables(seq, half, device, *, gen):
    """Random angles (not only RoPE frequencies), so every table entry matters."""
    angles = torch.rand(seq, half, generator=gen, dtype=torch.float32) * 2 * math.pi
    return angles.cos().to(device), angles.sin().to(device), angles.to(device)


def _reference_complex(x, angles, layout):
    """Independent reference: each pair as a complex number times exp(i angle), float64."""
    r = 2 * angles.shape[-1]
    xr = x[..., :r].double()
    if layout == "half":
        z = torch.complex(xr[..., : r // 2], xr[..., r // 2 :])
    else:
        z = torch.complex(xr[..., 0::2], xr[..., 1::2])
    w = z * torch.polar(torch.ones_like(angles.double()), angles.double())
    if layout == "half":
        rot = torch.cat([w.real, w.imag], dim=-1)
    else:
        rot = torch.stack([w.real, w.imag], dim=-1).flatten(-2)
    return torch.cat([rot, x[..., r:].double()], dim=-1)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("head_dim,half", [(16, 8), (12, 4), (10, 5)])  # full, partial, odd
@pytest.mark.parametrize("inplace", [False, True])
def test_matches_reference(device, dtype, layout, head_dim, half, inplace):
    gen = torch.Generator().manual_seed(head_dim + half)
    cos, sin, angles = _tables(7, half, device, gen=gen)
    x = torch.randn(2, 3, 7, head_dim, generator=gen).to(device=device, dtype=dtype)
    expected_lib = pe.apply_rope(x.float(), cos, sin, layout=layout).to(dtype)
    expected_ind = _reference_complex(x.cpu(), angles.cpu(), layout).to(dtype)
    x_in = x.clone()
    y = apply_rope_fused(x_in, cos, sin, layout=layout, inplace=inplace)
    assert y.dtype == dtype and y.shape == x.shape
    assert (y is x_in) == inplace
    if not inplace:
        torch.testing.assert_close(x_in, x, atol=0, rtol=0, msg="input modified")
    torch.testing.assert_close(y, expected_lib, **TOL[dtype])
    torch.testing.assert_close(y.cpu(), expected_ind, **TOL[dtype])
    # partial rotary: the tail is copied bit for bit
    torch.testing.assert_close(y[..., 2 * half :], x[..., 2 * half :], atol=0, rtol=0)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_hand_worked_angles(device, layout):
    """Angle 0 is the identity, angle pi negates, angle pi/2 maps (a, b) to (-b, a)."""
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 3, device=device)  # (seq=3, head_dim=4)
    angles = torch.tensor(
        [[0.0, 0.0], [math.pi, math.pi], [math.pi / 2, math.pi / 2]], device=device
    )
    y = apply_rope_fused(x, angles.cos(), angles.sin(), layout=layout)
    if layout == "half":  # pairs (x0, x2), (x1, x3)
        quarter = [-3.0, -4.0, 1.0, 2.0]
    else:  # pairs (x0, x1), (x2, x3)
        quarter = [-2.0, 1.0, -4.0, 3.0]
    expected = torch.tensor(
        [[1.0, 2.0, 3.0, 4.0], [-1.0, -2.0, -3.0, -4.0], quarter], device=device
    )
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(5, 8), (3, 5, 8), (2, 1, 3, 5, 8)])
def test_any_leading_dims(device, shape):
    gen = torch.Generator().manual_seed(1)
    cos, sin, _ = _tables(5, 4, device, gen=gen)
    x = torch.randn(shape, generator=gen).to(device)
    torch.testing.assert_close(apply_rope_fused(x, cos, sin), pe.apply_rope(x, cos, sin))


@pytest.mark.parametrize("inplace", [False, True])
def test_strided_views(device, inplace):
    """(batch, seq, heads, dim) storage seen as (batch, heads, seq, dim), and a sliced view."""
    gen = torch.Generator().manual_seed(2)
    cos, sin, _ = _tables(6, 4, device, gen=gen)
    base = torch.randn(2, 6, 3, 8, generator=gen).to(device)
    for view in (base.transpose(1, 2), base.transpose(1, 2)[:, ::2]):
        expected = pe.apply_rope(view.contiguous(), cos, sin)
        x = view.clone() if not inplace else base.clone().transpose(1, 2)
        if inplace and view.shape != x.shape:
            x = x[:, ::2]
        y = apply_rope_fused(x, cos, sin, inplace=inplace)
        torch.testing.assert_close(y, expected)
        assert y.stride() == x.stride()


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("inplace", [False, True])
def test_backward_matches_reference_gradients(device, dtype, layout, inplace):
    gen = torch.Generator().manual_seed(3)
    cos, sin, _ = _tables(5, 3, device, gen=gen)  # partial rotary: 6 of 8 features
    x0 = torch.randn(2, 2, 5, 8, generator=gen).to(device=device, dtype=dtype)
    grad_y = torch.randn(2, 2, 5, 8, generator=gen).to(device=device, dtype=dtype)

    x_ref = x0.float().clone().requires_grad_()
    pe.apply_rope(x_ref, cos, sin, layout=layout).backward(grad_y.float())

    leaf = x0.detach().clone().requires_grad_()
    x = leaf * 1 if inplace else leaf  # in-place needs a non-leaf tensor
    y = apply_rope_fused(x, cos, sin, layout=layout, inplace=inplace)
    y.backward(grad_y)
    assert leaf.grad.dtype == dtype
    torch.testing.assert_close(leaf.grad, x_ref.grad.to(dtype), **TOL[dtype])


def test_backward_is_inverse_rotation(device):
    """The vector-Jacobian product of an orthogonal map is its inverse: R^T R g = g."""
    gen = torch.Generator().manual_seed(4)
    cos, sin, _ = _tables(4, 4, device, gen=gen)
    g = torch.randn(3, 4, 8, generator=gen).to(device)
    x = torch.zeros_like(g, requires_grad=True)
    apply_rope_fused(x, cos, sin).backward(apply_rope_fused(g, cos, sin))
    torch.testing.assert_close(x.grad, g)


def test_dispatcher_picks_kernel_or_fallback(monkeypatch):
    gen = torch.Generator().manual_seed(5)
    cos, sin, _ = _tables(4, 4, "cpu", gen=gen)
    x = torch.randn(2, 4, 8, generator=gen)
    calls = []
    real_launch = rope_triton._launch
    monkeypatch.setattr(
        rope_triton, "_launch", lambda *a, **k: calls.append(1) or real_launch(*a, **k)
    )
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    y_kernel = apply_rope_fast(x, cos, sin, layout="interleaved")
    assert calls == [1], "CPU + TRITON_INTERPRET=1 should use the kernel"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    y_ref = apply_rope_fast(x, cos, sin, layout="interleaved")
    assert calls == [1], "CPU without the interpreter flag should fall back"
    torch.testing.assert_close(y_kernel, y_ref)
    # fallback, in place
    x2 = x.clone()
    assert apply_rope_fast(x2, cos, sin, inplace=True) is x2
    torch.testing.assert_close(x2, pe.apply_rope(x, cos, sin))
    # tables that need gradients take the reference path (gradients reach the tables)
    cos_g = cos.clone().requires_grad_()
    apply_rope_fast(x, cos_g, sin).sum().backward()
    assert calls == [1] and cos_g.grad is not None


def test_fallback_without_triton(monkeypatch):
    monkeypatch.setattr(rope_triton, "triton_available", lambda: False)
    gen = torch.Generator().manual_seed(6)
    cos, sin, _ = _tables(4, 2, "cpu", gen=gen)
    x = torch.randn(4, 4, generator=gen)
    torch.testing.assert_close(apply_rope_fast(x, cos, sin), pe.apply_rope(x, cos, sin))
    with pytest.raises(ModuleNotFoundError, match="triton"):
        apply_rope_fused(x, cos, sin)


def test_bad_inputs():
    cos = sin = torch.ones(4, 2)
    x = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="layout"):
        apply_rope_fused(x, cos, sin, layout="rotate")
    with pytest.raises(ValueError, match="same shape"):
        apply_rope_fused(x, cos, torch.ones(4, 3))
    with pytest.raises(ValueError, match="seq"):
        apply_rope_fused(torch.randn(2, 5, 8), cos, sin)
    with pytest.raises(ValueError, match=r"cos.shape\[-1\]"):
        apply_rope_fused(torch.randn(2, 4, 2), cos, sin)
    with pytest.raises(ValueError, match="cos must have shape"):
        apply_rope_fused(x, torch.ones(2, 4, 2), torch.ones(2, 4, 2))
    with pytest.raises(TypeError, match="floating"):
        apply_rope_fused(torch.ones(2, 4, 8, dtype=torch.int64), cos, sin)
    with pytest.raises(ValueError, match="constants"):
        apply_rope_fused(x, cos.clone().requires_grad_(), sin)


@pytest.mark.parametrize("seq", [1, 7, 512, 32768])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_gpu_tiles_follow_the_measured_sizes(seq, head_dim):
    """The GPU tile holds at most 256 pairs per row for the interleaved layout (its stride-2
    reads ran up to 9x slower in 2048-pair tiles on an H200) and up to 2048 for the half
    layout; never more positions than the sequence has (rounded up to a power of two)."""
    half = head_dim // 2
    for interleaved, pairs in ((True, 256), (False, 2048)):
        cfg = rope_triton._config(seq, half, 32, interpreted=False, interleaved=interleaved)
        assert cfg["BLOCK_S"] * half <= max(pairs, half)
        assert cfg["BLOCK_S"] <= 1 << (seq - 1).bit_length()
        assert 1 <= cfg["ROWS_PER_PROGRAM"] <= 8
    big = rope_triton._config(32768, half, 32, interpreted=False, interleaved=True)
    assert big["BLOCK_S"] * half == 256
