"""Tests for posenc_lib.rope: explicit rotation matrices, complex multiplication,
relative-position property, layouts, partial rotary, precision, the module, bad input."""

import math

import pytest
import torch
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import posenc_lib as pe

TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def block_matrix(position, inv_freq, *, layout="interleaved"):
    """R_m in float64 from math.cos / math.sin, one 2 x 2 block per pair."""
    n = len(inv_freq)
    r = torch.zeros(2 * n, 2 * n, dtype=torch.float64)
    for k, w in enumerate(inv_freq.tolist()):
        a, b = (2 * k, 2 * k + 1) if layout == "interleaved" else (k, k + n)
        c, s = math.cos(position * w), math.sin(position * w)
        r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


def rotate_by_matrices(x, positions, inv_freq, layout):
    """Apply R_{positions[m]} to x[..., m, :] (float64)."""
    mats = torch.stack([block_matrix(p, inv_freq, layout=layout) for p in positions.tolist()])
    return torch.einsum("mij,...mj->...mi", mats, x.double())


# ------------------------------------------------------------------ tables


def test_cos_sin_values_shapes_and_scaling(device):
    inv = pe.rope_inv_freq(8, device=device)[0]
    cos, sin = pe.rope_cos_sin(5, inv, attention_scaling=2.0, dtype=torch.float64)
    assert cos.shape == sin.shape == (5, 4) and cos.dtype == torch.float64
    assert cos.device.type == device.type
    assert cos[3, 1].item() == pytest.approx(2 * math.cos(3 * 0.1), abs=1e-6)
    assert sin[4, 2].item() == pytest.approx(2 * math.sin(4 * 0.01), abs=1e-6)
    c2, _ = pe.rope_cos_sin(torch.tensor([0, 1, 2, 3, 4]), inv, attention_scaling=2.0)
    assert_close(c2.double(), cos)
    frac, _ = pe.rope_cos_sin(torch.tensor([0.5]), inv)
    assert frac[0, 0].item() == pytest.approx(math.cos(0.5), abs=1e-6)


def test_rotate_half_hand_example():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.equal(pe.rotate_half(x), torch.tensor([-3.0, -4.0, 1.0, 2.0]))


def test_rotation_matrix_helper(device):
    inv = pe.rope_inv_freq(8)[0].double()
    r = pe.rope_rotation_matrix(7.5, 8, inv_freq=inv)
    assert r.dtype == torch.float64 and r.shape == (8, 8)
    assert_close(r, block_matrix(7.5, inv), atol=1e-12, rtol=0)
    half = pe.rope_rotation_matrix(7.5, 8, inv_freq=inv, layout="half")
    assert_close(half, block_matrix(7.5, inv, layout="half"), atol=1e-12, rtol=0)
    # orthogonal, and R_m R_n = R_{m+n}
    assert_close(r @ r.T, torch.eye(8, dtype=torch.float64), atol=1e-12, rtol=0)
    r3 = pe.rope_rotation_matrix(3.0, 8) @ pe.rope_rotation_matrix(4.5, 8)
    assert_close(r3, pe.rope_rotation_matrix(7.5, 8), atol=1e-12, rtol=0)


# ------------------------------------------------------------------ apply_rope


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_apply_rope_equals_block_diagonal_matrix(layout, device, dtype):
    torch.manual_seed(0)
    inv = pe.rope_inv_freq(16)[0]
    positions = torch.tensor([0.0, 1.0, 2.5, 17.0, 100.0, 511.0])
    x = torch.randn(2, 3, 6, 16)
    expected = rotate_by_matrices(x.to(dtype), positions, inv, layout)
    cos, sin = pe.rope_cos_sin(positions, inv.to(device), dtype=dtype)
    out = pe.apply_rope(x.to(device, dtype), cos, sin, layout=layout)
    assert out.dtype == dtype and out.shape == x.shape
    tol = TOL[dtype] if dtype == torch.float32 else TOL[dtype] * 4
    assert_close(out.double().cpu(), expected, atol=tol, rtol=tol)


def test_interleaved_equals_complex_multiplication(device):
    torch.manual_seed(1)
    inv = pe.rope_inv_freq(32, base=500_000.0, device=device)[0]
    x = torch.randn(4, 9, 32, device=device)
    angles = torch.outer(torch.arange(9.0, device=device), inv)
    z = torch.view_as_complex(x.reshape(4, 9, 16, 2).contiguous()) * torch.polar(
        torch.ones_like(angles), angles
    )
    expected = torch.view_as_real(z).flatten(-2)
    out = pe.apply_rope(x, *pe.rope_cos_sin(9, inv), layout="interleaved")
    assert_close(out, expected)


finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)
eighths = st.integers(0, 256).map(lambda i: i / 8)  # 0 .. 32, exact in float32


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["half", "interleaved"]),
    st.sampled_from([4, 16, 64]),
    st.integers(0, 2**31 - 1),
    st.lists(eighths, min_size=1, max_size=6),
)
def test_norm_preserved(layout, head_dim, seed, positions):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(positions), head_dim, generator=g, dtype=torch.float64)
    cos, sin = pe.rope_cos_sin(
        torch.tensor(positions), pe.rope_inv_freq(head_dim)[0], dtype=torch.float64
    )
    out = pe.apply_rope(x, cos, sin, layout=layout)
    # cos, sin are float32 values: cos^2 + sin^2 = 1 to float32 rounding
    assert_close(out.norm(dim=-1), x.norm(dim=-1), atol=0, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["half", "interleaved"]), st.integers(0, 2**31 - 1), eighths, eighths, eighths
)
def test_score_depends_only_on_offset(layout, seed, m, n, shift):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, 32, generator=g)
    q, k = q / q.norm(), k / k.norm()
    inv = pe.rope_inv_freq(32)[0]

    def score(a, b):
        cq, sq = pe.rope_cos_sin(torch.tensor([a]), inv)
        ck, sk = pe.rope_cos_sin(torch.tensor([b]), inv)
        return (
            pe.apply_rope(q, cq, sq, layout=layout) * pe.apply_rope(k, ck, sk, layout=layout)
        ).sum()

    base = score(m, n)
    assert abs(score(m + shift, n + shift) - base) < 1e-5
    # and it equals <q, R_{n-m} k>: the rotation by the offset alone
    ck, sk = pe.rope_cos_sin(torch.tensor([n - m]), inv)
    assert abs((q * pe.apply_rope(k, ck, sk, layout=layout)).sum() - base) < 1e-5


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([2, 8, 64]), st.integers(0, 2**31 - 1))
def test_layouts_agree_after_permutation(head_dim, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, head_dim, generator=g)
    cos, sin = pe.rope_cos_sin(5, pe.rope_inv_freq(head_dim)[0])
    perm = pe.rope_permutation(head_dim)
    inter = pe.apply_rope(x, cos, sin, layout="interleaved")
    half = pe.apply_rope(x[..., perm], cos, sin, layout="half")
    assert_close(half, inter[..., perm])
    back = pe.rope_permutation(head_dim, inverse=True)
    assert torch.equal(x[..., perm][..., back], x)


def test_layouts_differ_without_permutation():
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    cos, sin = pe.rope_cos_sin(5, pe.rope_inv_freq(8)[0])
    diff = pe.apply_rope(x, cos, sin) - pe.apply_rope(x, cos, sin, layout="interleaved")
    assert diff.abs().max() > 0.1
    assert pe.rope_permutation(8).tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_partial_rotary_leaves_tail_untouched(layout, device, dtype):
    x = torch.randn(2, 4, 7, 24, device=device).to(dtype)
    cos, sin = pe.rope_cos_sin(7, pe.rope_inv_freq(16, device=device)[0])
    out = pe.apply_rope(x, cos, sin, layout=layout)
    assert torch.equal(out[..., 16:], x[..., 16:])
    assert torch.equal(out[..., :16], pe.apply_rope(x[..., :16], cos, sin, layout=layout))
    assert not torch.equal(out[..., :16], x[..., :16])


def _pair_scale(x, n):
    """``|a_k| + |b_k|`` for every output feature of the half layout."""
    scale = x[..., :n].abs() + x[..., n : 2 * n].abs()
    return torch.cat((scale, scale), dim=-1)


def test_half_precision_error_band(dtype):
    """The documented accuracy: within 1.5 eps (|a| + |b|) of the exact rotation."""
    torch.manual_seed(0)
    x = torch.randn(3, 512, 64).to(dtype)
    cos, sin = pe.rope_cos_sin(512, pe.rope_inv_freq(64)[0])
    out = pe.apply_rope(x, cos, sin)
    assert out.dtype == dtype
    exact = pe.apply_rope(x.double(), cos.double(), sin.double())
    err = (out.double() - exact).abs() / _pair_scale(x.double(), 32)
    assert err.max() <= 1.5 * torch.finfo(dtype).eps, err.max() / torch.finfo(dtype).eps


def test_bf16_angles_fail_at_large_positions_float32_angles_do_not():
    head_dim, pos = 64, 100_000
    exact = pos * torch.tensor(
        [10_000.0 ** (-2 * i / head_dim) for i in range(32)], dtype=torch.float64
    )
    inv = pe.rope_inv_freq(head_dim)[0]
    naive = (
        torch.tensor([float(pos)], dtype=torch.bfloat16)[:, None] * inv.to(torch.bfloat16)
    ).cos()
    cos, _ = pe.rope_cos_sin(torch.tensor([pos]), inv, dtype=torch.bfloat16)
    naive_err = (naive[0].double() - exact.cos()).abs().max()
    ours_err = (cos[0].double() - exact.cos()).abs().max()
    assert naive_err > 0.5, f"bf16 angles should be badly wrong, error {naive_err:.3f}"
    assert ours_err < 2e-2, f"float32 angles then bf16 cast, error {ours_err:.4f}"


def test_large_positions_are_finite(device):
    inv, att = pe.rope_inv_freq(
        128, scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048}
    )
    cos, sin = pe.rope_cos_sin(
        torch.tensor([0.0, 1e6]), inv.to(device), attention_scaling=att, dtype=torch.float16
    )
    x = torch.randn(1, 2, 2, 128, device=device, dtype=torch.float16)
    out = pe.apply_rope(x, cos, sin)
    assert torch.isfinite(cos).all() and torch.isfinite(out).all()


# ------------------------------------------------------------------ module


def test_rotary_embedding_gqa_offset_and_cache(device, dtype):
    rot = pe.RotaryEmbedding(32).to(device)
    q = torch.randn(2, 8, 6, 32, device=device, dtype=dtype)
    k = torch.randn(2, 2, 6, 32, device=device, dtype=dtype)
    oq, ok = rot(q, k)
    assert oq.shape == q.shape and ok.shape == k.shape and oq.dtype == dtype
    cos, sin = pe.rope_cos_sin(6, pe.rope_inv_freq(32, device=device)[0])
    assert torch.equal(oq, pe.apply_rope_fast(q, cos, sin))  # the module's (fused) path
    # offset: the same as the tail of a longer sequence
    long_q = torch.cat((torch.randn_like(q[:, :, :3]), q), dim=2)
    tail, _ = rot(long_q, long_q)
    shifted, _ = rot(q, q, offset=3)
    assert torch.equal(shifted, tail[:, :, 3:])
    explicit, _ = rot(q, q, positions=torch.arange(3, 9, device=device))
    assert_close(explicit.float(), shifted.float(), atol=TOL[dtype], rtol=TOL[dtype])
    assert rot.cos_sin(4)[0].data_ptr() == rot.cos_sin(9)[0].data_ptr()  # cached
    assert "inv_freq" not in rot.state_dict()


def test_rotary_embedding_batch_positions_partial_and_interleaved(device):
    rot = pe.RotaryEmbedding(16, rotary_dim=8, layout="interleaved").to(device)
    q = torch.randn(2, 3, 4, 16, device=device)
    pos = torch.tensor([[0, 1, 2, 3], [5, 6, 7, 8]], device=device)
    oq, _ = rot(q, q, positions=pos)
    assert torch.equal(oq[..., 8:], q[..., 8:])
    inv = pe.rope_inv_freq(8, device=device)[0]
    for b in range(2):
        cos, sin = pe.rope_cos_sin(pos[b], inv)
        assert_close(oq[b], pe.apply_rope(q[b], cos, sin, layout="interleaved"))


# ------------------------------------------------------------------ bad input


def test_apply_rope_bad_input():
    x = torch.randn(2, 5, 8)
    cos, sin = pe.rope_cos_sin(5, pe.rope_inv_freq(8)[0])
    with pytest.raises(ValueError, match="layout must be one of"):
        pe.apply_rope(x, cos, sin, layout="neox")
    with pytest.raises(TypeError, match="x must be a floating-point"):
        pe.apply_rope(x.long(), cos, sin)
    with pytest.raises(ValueError, match="seq dimension"):
        pe.apply_rope(x[:, :4], cos, sin)
    with pytest.raises(ValueError, match=r"x.shape\[-1\] // 2"):
        pe.apply_rope(x[..., :6], cos, sin)
    with pytest.raises(ValueError, match="same shape"):
        pe.apply_rope(x, cos, sin[:, :3])
    with pytest.raises(ValueError, match="broadcast"):
        pe.apply_rope(x, cos.expand(3, 5, 4), sin.expand(3, 5, 4))
    with pytest.raises(ValueError, match="must be even"):
        pe.rotate_half(torch.randn(3))


def test_tables_and_module_bad_input():
    inv = pe.rope_inv_freq(8)[0]
    with pytest.raises(ValueError, match="positions must be finite"):
        pe.rope_cos_sin(torch.tensor([0.0, float("inf")]), inv)
    with pytest.raises(ValueError, match="positions must be 1-D"):
        pe.rope_cos_sin(torch.zeros(2, 2), inv)
    with pytest.raises(TypeError, match="inv_freq must be a floating"):
        pe.rope_cos_sin(3, torch.arange(4))
    with pytest.raises(ValueError, match="attention_scaling"):
        pe.rope_cos_sin(3, inv, attention_scaling=0.0)
    with pytest.raises(TypeError, match="dtype"):
        pe.rope_cos_sin(3, inv, dtype=torch.int32)
    with pytest.raises(ValueError, match="rotary_dim must be <= head_dim"):
        pe.RotaryEmbedding(8, rotary_dim=16)
    with pytest.raises(ValueError, match="rotary_dim must be even"):
        pe.RotaryEmbedding(8, rotary_dim=3)
    rot = pe.RotaryEmbedding(8)
    q = torch.randn(1, 2, 3, 8)
    with pytest.raises(ValueError, match="head_dim = 8"):
        rot(torch.randn(1, 2, 3, 6), q)
    with pytest.raises(ValueError, match="share batch and seq"):
        rot(q, q[:, :, :2])
    with pytest.raises(ValueError, match="not both"):
        rot(q, q, positions=torch.arange(3), offset=1)
    with pytest.raises(ValueError, match="positions must be"):
        rot(q, q, positions=torch.arange(4))
    with pytest.raises(ValueError, match="position must be finite"):
        pe.rope_rotation_matrix(float("nan"), 8)
    with pytest.raises(TypeError, match="position must be an int or a float"):
        pe.rope_rotation_matrix("3", 8)


def test_angles_in_float32_even_for_low_precision_inv_freq():
    inv = pe.rope_inv_freq(16)[0].to(torch.bfloat16)
    pos = torch.tensor([12_345])
    angles = pe.rope_angles(pos, inv)
    assert angles.dtype == torch.float32
    exact = 12_345 * inv.double()[None]  # the bf16 frequencies, multiplied exactly
    assert_close(angles.double(), exact, atol=1e-3, rtol=0)


def test_cache_grows_geometrically_and_matches_direct_tables():
    rot = pe.RotaryEmbedding(8)
    inv = pe.rope_inv_freq(8)[0]
    for length in range(1, 40):  # token-by-token decoding
        cos, sin = rot.cos_sin(length)
        assert cos.shape == (length, 4)
    assert_close((cos, sin), pe.rope_cos_sin(39, inv))
    (table,) = rot._cache.values()
    assert table[0].shape[0] == 64  # 1, 2, 4, ..., 64: rebuilt 7 times, not 39


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_fast_path_matches_formula_values_and_gradients(layout, dtype):
    """apply_rope's in-place fast path and hand-written backward equal the plain formula."""
    from posenc_lib.rope import _rope_formula

    torch.manual_seed(0)
    x = torch.randn(2, 3, 700, 20, dtype=dtype)
    inv_freq, _ = pe.rope_inv_freq(16)
    cos, sin = pe.rope_cos_sin(700, inv_freq)  # partial rotary: 16 of 20 features
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast, ref = pe.apply_rope(x1, cos, sin, layout=layout), _rope_formula(x2, cos, sin, layout)
    grad = torch.randn_like(ref)
    fast.backward(grad)
    ref.backward(grad)
    if dtype == torch.bfloat16:  # the formula rounds once, the fast path twice
        band = 1.5 * torch.finfo(dtype).eps * _pair_scale(x.double(), 8).amax()
        assert (fast.double() - ref.double()).abs().max() <= band
        assert (x1.grad.double() - x2.grad.double()).abs().max() <= band * 4
        return
    # Equal up to rounding: the fast path uses fused multiply-adds (addcmul).
    torch.testing.assert_close(fast, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_double_backward_through_fast_path():
    x = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    cos, sin = pe.rope_cos_sin(5, pe.rope_inv_freq(8)[0], dtype=torch.float64)
    assert torch.autograd.gradgradcheck(lambda t: pe.apply_rope(t, cos, sin), (x,))


def test_apply_rope_compiles():
    """Under torch.compile the plain formula is used (the eager fast path writes into
    preallocated outputs, which the compiler does not need)."""
    x = torch.randn(2, 4, 16)
    cos, sin = pe.rope_cos_sin(4, pe.rope_inv_freq(16)[0])
    compiled = torch.compile(pe.apply_rope, backend="eager")
    torch.testing.assert_close(compiled(x, cos, sin), pe.apply_rope(x, cos, sin))
