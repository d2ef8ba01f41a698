"""Tests of posenc_lib.sinusoidal against independent computations (math.sin loops, hand
values) and the algebraic properties the chapter relies on."""

import math

import pytest
import torch
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import posenc_lib as pe


def loop_table(positions, d_model, base=10_000.0, layout="interleaved"):
    """Plain-Python reference, float64: one math.sin / math.cos call per entry."""
    rows = []
    for p in positions:
        row = [0.0] * d_model
        for col in range(d_model):
            if layout == "interleaved":
                i, use_cos = col // 2, col % 2 == 1
            else:
                i, use_cos = col % (d_model // 2), col >= d_model // 2
            angle = p / base ** (2 * i / d_model)
            row[col] = math.cos(angle) if use_cos else math.sin(angle)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def test_hand_worked_i_am_good():
    """'I am good': 3 tokens, d_model = 4, base 10 000; w_0 = 1, w_1 = 10000^(-2/4) = 0.01."""
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
            [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
        ],
        dtype=torch.float64,
    )
    assert_close(pe.sinusoidal_encoding(3, 4, dtype=torch.float64), expected, atol=1e-12)
    assert_close(pe.sinusoidal_encoding(3, 4), expected.float())
    # the same numbers, written out to 4 decimals
    assert pe.sinusoidal_encoding(3, 4)[1, 0].item() == pytest.approx(0.8415, abs=1e-4)
    assert pe.sinusoidal_encoding(3, 4)[2, 1].item() == pytest.approx(-0.4161, abs=1e-4)


@pytest.mark.parametrize("layout", ["interleaved", "concat"])
@pytest.mark.parametrize(
    ("n", "d_model", "base"), [(7, 2, 10_000.0), (17, 8, 10_000.0), (5, 16, 500.0), (33, 6, 1e6)]
)
def test_matches_math_loop(layout, n, d_model, base):
    got = pe.sinusoidal_encoding(n, d_model, base=base, layout=layout, dtype=torch.float64)
    assert got.shape == (n, d_model) and got.dtype == torch.float64
    assert_close(got, loop_table(range(n), d_model, base, layout), atol=1e-12, rtol=0)
    got32 = pe.sinusoidal_encoding(n, d_model, base=base, layout=layout)
    assert got32.dtype == torch.float32
    assert_close(got32.double(), loop_table(range(n), d_model, base, layout), atol=2e-6, rtol=0)


def test_fractional_and_negative_positions():
    positions = torch.tensor([-3.5, 0.25, 2.0, 7.75], dtype=torch.float64)
    got = pe.sinusoidal_encoding(positions, 6, dtype=torch.float64)
    assert_close(got, loop_table(positions.tolist(), 6), atol=1e-12, rtol=0)
    # integer tensors are accepted too
    assert_close(pe.sinusoidal_encoding(torch.arange(4), 6), pe.sinusoidal_encoding(4, 6))


def test_float64_keeps_precision_at_large_positions():
    """dtype=float64 computes angles in float64: exact at p = 10^6 where float32 is not."""
    p = torch.tensor([1e6 + 0.5], dtype=torch.float64)
    got = pe.sinusoidal_encoding(p, 8, dtype=torch.float64)
    assert_close(got, loop_table([1e6 + 0.5], 8), atol=1e-9, rtol=0)


def test_frequencies():
    omega = pe.sinusoidal_frequencies(8, base=10_000.0, dtype=torch.float64)
    expected = torch.tensor([10_000.0 ** (-2 * i / 8) for i in range(4)], dtype=torch.float64)
    assert_close(omega, expected, atol=0, rtol=1e-14)
    assert omega[0] == 1.0
    ratios = omega[1:] / omega[:-1]  # geometric progression
    assert_close(ratios, torch.full_like(ratios, 10_000.0 ** (-2 / 8)))
    assert pe.sinusoidal_frequencies(8).dtype == torch.float32


@settings(max_examples=40, deadline=None)
@given(d_half=st.integers(1, 32), n=st.integers(1, 20))
def test_layouts_agree_after_permutation(d_half, n):
    d = 2 * d_half
    inter = pe.sinusoidal_encoding(n, d)
    concat = pe.sinusoidal_encoding(n, d, layout="concat")
    to_concat = pe.interleaved_to_concat_permutation(d)
    to_inter = pe.concat_to_interleaved_permutation(d)
    assert torch.equal(inter[:, to_concat], concat)
    assert torch.equal(concat[:, to_inter], inter)
    assert torch.equal(to_concat[to_inter], torch.arange(d))  # mutual inverses


def test_permutation_hand_values():
    assert pe.interleaved_to_concat_permutation(6).tolist() == [0, 2, 4, 1, 3, 5]
    assert pe.concat_to_interleaved_permutation(6).tolist() == [0, 3, 1, 4, 2, 5]


def test_shift_matrix_block_is_the_stated_rotation():
    k, d = 3, 4
    m = pe.sinusoidal_shift_matrix(k, d, dtype=torch.float64)
    w1 = 10_000.0 ** (-2 / 4)
    c, s = math.cos(k * w1), math.sin(k * w1)
    assert_close(m[2:, 2:], torch.tensor([[c, s], [-s, c]], dtype=torch.float64), atol=1e-14)
    assert torch.count_nonzero(m[:2, 2:]) == 0 and torch.count_nonzero(m[2:, :2]) == 0


@pytest.mark.parametrize("layout", ["interleaved", "concat"])
@settings(max_examples=60, deadline=None)
@given(p=st.floats(-1000, 1000), k=st.floats(-1000, 1000), d_half=st.integers(1, 16))
def test_shift_matrix_moves_every_position(layout, p, k, d_half):
    """P[p + k] = M_k P[p], for any p (the matrix does not depend on p)."""
    d = 2 * d_half
    table = pe.sinusoidal_encoding(
        torch.tensor([p, p + k], dtype=torch.float64), d, layout=layout, dtype=torch.float64
    )
    m = pe.sinusoidal_shift_matrix(k, d, layout=layout, dtype=torch.float64)
    assert_close(m @ table[0], table[1], atol=1e-9, rtol=0)  # float64 throughout


def test_shift_matrix_float32_table():
    table = pe.sinusoidal_encoding(64, 16)
    m = pe.sinusoidal_shift_matrix(5, 16)
    assert_close(table[:-5] @ m.T, table[5:], atol=1e-5, rtol=0)


def test_shift_matrix_group_properties():
    a, b = (
        pe.sinusoidal_shift_matrix(3, 8, dtype=torch.float64),
        pe.sinusoidal_shift_matrix(-7.5, 8, dtype=torch.float64),
    )
    ab = pe.sinusoidal_shift_matrix(-4.5, 8, dtype=torch.float64)
    assert_close(a @ b, ab, atol=1e-12, rtol=0)  # M_a M_b = M_{a+b}
    assert_close(a.T, pe.sinusoidal_shift_matrix(-3, 8, dtype=torch.float64), atol=1e-12, rtol=0)
    assert_close(a @ a.T, torch.eye(8, dtype=torch.float64), atol=1e-12, rtol=0)
    assert_close(pe.sinusoidal_shift_matrix(0, 8), torch.eye(8))


@settings(max_examples=30, deadline=None)
@given(p=st.floats(0, 1e6), d_half=st.integers(1, 64))
def test_far_positions_finite_and_on_circles(p, d_half):
    table = pe.sinusoidal_encoding(torch.tensor([p, 1e6]), 2 * d_half)
    assert torch.isfinite(table).all()
    pairs = table.view(2, d_half, 2)
    assert_close((pairs**2).sum(-1), torch.ones(2, d_half), atol=1e-5, rtol=0)


def test_dtype_and_device(dtype, device):
    got = pe.sinusoidal_encoding(10, 8, dtype=dtype, device=device)
    assert got.dtype == dtype and got.device.type == device.type
    ref = loop_table(range(10), 8).to(device)
    tol = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    assert_close(got.double(), ref, atol=tol, rtol=0)
    # positions given as a tensor keep its device
    positions = torch.arange(3, device=device)
    assert pe.sinusoidal_encoding(positions, 4).device.type == device.type


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"positions": 4, "d_model": 5}, ValueError, "d_model must be even"),
        ({"positions": 4, "d_model": 0}, ValueError, "d_model must be >= 2"),
        ({"positions": 4, "d_model": 4, "layout": "half"}, ValueError, "layout must be one of"),
        ({"positions": torch.tensor([0.0, math.nan]), "d_model": 4}, ValueError, "finite"),
        ({"positions": torch.tensor([math.inf]), "d_model": 4}, ValueError, "finite"),
        ({"positions": torch.zeros(2, 2), "d_model": 4}, ValueError, "1-D"),
        ({"positions": -1, "d_model": 4}, ValueError, "positions must be >= 0"),
        ({"positions": 4, "d_model": 4, "base": 0.0}, ValueError, "base must be"),
        ({"positions": 4, "d_model": 4, "dtype": torch.int64}, TypeError, "dtype"),
        ({"positions": 2.5, "d_model": 4}, TypeError, "positions must be an int"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        pe.sinusoidal_encoding(**kwargs)


def test_bad_inputs_other_functions():
    with pytest.raises(ValueError, match="d_model must be even"):
        pe.sinusoidal_shift_matrix(1, 7)
    with pytest.raises(ValueError, match="k must be finite"):
        pe.sinusoidal_shift_matrix(math.nan, 4)
    with pytest.raises(ValueError, match="layout"):
        pe.sinusoidal_shift_matrix(1, 4, layout="rows")
    with pytest.raises(ValueError, match="d_model must be even"):
        pe.interleaved_to_concat_permutation(3)
    with pytest.raises(ValueError, match="d_model must be even"):
        pe.SinusoidalPositionalEncoding(9)


# ------------------------------------------------------------------------------ module


def test_module_adds_table(device, dtype):
    mod = pe.SinusoidalPositionalEncoding(8, max_len=32).to(device)
    x = torch.randn(2, 5, 8, device=device).to(dtype)
    y = mod(x, offset=3)
    assert y.dtype == dtype and y.shape == x.shape
    expected = x.double() + loop_table(range(3, 8), 8).to(device)
    tol = {torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    assert_close(y.double(), expected, atol=tol, rtol=tol)


def test_module_scale_input_and_no_persistent_buffer():
    mod = pe.SinusoidalPositionalEncoding(16, max_len=8, scale_input=True)
    x = torch.randn(1, 4, 16)
    assert_close(mod(x), x * 4.0 + pe.sinusoidal_encoding(4, 16))
    assert "table" not in mod.state_dict() and len(list(mod.parameters())) == 0


def test_module_beyond_max_len_computes_on_the_fly():
    mod = pe.SinusoidalPositionalEncoding(8, max_len=4)
    x = torch.zeros(1, 6, 8)
    assert_close(mod(x, offset=2), pe.sinusoidal_encoding(torch.arange(2, 8), 8)[None])
    big = pe.SinusoidalPositionalEncoding(8, max_len=16)
    assert_close(mod(x, offset=2), big(x, offset=2))


def test_module_dropout_and_errors():
    mod = pe.SinusoidalPositionalEncoding(8, dropout=0.5).eval()
    x = torch.randn(2, 3, 8)
    assert_close(mod(x), x + pe.sinusoidal_encoding(3, 8))  # dropout is off in eval
    with pytest.raises(ValueError, match="last dimension d_model=8"):
        mod(torch.zeros(1, 3, 6))
    with pytest.raises(ValueError, match="offset must be >= 0"):
        mod(x, offset=-1)
    with pytest.raises(ValueError, match="dropout"):
        pe.SinusoidalPositionalEncoding(8, dropout=1.5)
