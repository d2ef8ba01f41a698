"""Tests of posenc_lib.alibi: published slopes, the bias against its definition, masking."""

import math

import pytest
import torch
from conftest import assert_close

import posenc_lib as pe


def test_published_8_head_slopes():
    """Press et al. (2022): for 8 heads the slopes are 1/2, 1/4, ..., 1/256."""
    got = pe.alibi_slopes(8)
    assert got.dtype == torch.float32
    assert got.tolist() == [1 / 2**h for h in range(1, 9)]


def test_hand_computed_non_power_of_two():
    # 12 heads: the 8 slopes above, then slopes 1, 3, 5, 7 of the 16-head sequence 2^(-h/2)
    expected = [2.0**-h for h in range(1, 9)] + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]
    assert_close(pe.alibi_slopes(12), torch.tensor(expected), atol=0, rtol=1e-7)
    # 3 heads: 2-head slopes 2^-4, 2^-8, then the first slope of the 4-head sequence, 2^-2
    assert pe.alibi_slopes(3).tolist() == [2**-4, 2**-8, 2**-2]
    assert pe.alibi_slopes(1).tolist() == [2**-8]


@pytest.mark.parametrize("n", [1, 2, 4, 16, 32, 64])
def test_power_of_two_formula(n):
    expected = torch.tensor([2 ** (-8 * h / n) for h in range(1, n + 1)])
    assert_close(pe.alibi_slopes(n), expected, atol=0, rtol=1e-7)


@pytest.mark.parametrize("n", range(1, 40))
def test_slopes_distinct_and_in_range(n):
    s = pe.alibi_slopes(n)
    assert s.shape == (n,) and len(set(s.tolist())) == n
    assert (s > 0).all() and (s < 1).all()


def test_bad_num_heads():
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        pe.alibi_slopes(0)
    with pytest.raises(TypeError, match="num_heads must be an int"):
        pe.alibi_slopes(4.0)
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        pe.alibi_bias(-2, 3, 3)


def loop_bias(num_heads, q_len, k_len, causal, offset):
    slopes = pe.alibi_slopes(num_heads).double()
    out = torch.zeros(num_heads, q_len, k_len, dtype=torch.float64)
    for r in range(q_len):
        i = r + offset
        for j in range(k_len):
            if causal:
                out[:, r, j] = -slopes * (i - j) if j <= i else -math.inf
            else:
                out[:, r, j] = -slopes * abs(i - j)
    return out


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("q_len", "k_len", "offset"), [(5, 5, 0), (2, 7, 5), (4, 3, 0)])
def test_bias_matches_definition(causal, q_len, k_len, offset, device):
    got = pe.alibi_bias(6, q_len, k_len, causal=causal, offset=offset, device=device)
    assert got.shape == (6, q_len, k_len) and got.device.type == device.type
    assert_close(got.double().cpu(), loop_bias(6, q_len, k_len, causal, offset))


def test_causal_bias_is_the_mask_and_kv_cache_rows():
    bias = pe.alibi_bias(4, 6, 6)
    assert torch.equal(torch.isinf(bias[0]), torch.ones(6, 6, dtype=torch.bool).triu(1))
    assert (bias[:, :, 0] <= 0).all() and (bias.diagonal(dim1=1, dim2=2) == 0).all()
    assert torch.equal(pe.alibi_bias(4, 2, 6, offset=4), bias[:, 4:])
    # non-causal: symmetric
    sym = pe.alibi_bias(4, 6, 6, causal=False)
    assert torch.equal(sym, sym.transpose(1, 2))


def test_bias_as_sdpa_mask_equals_masked_softmax():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 6, 8) for _ in range(3))
    bias = pe.alibi_bias(4, 6, 6)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    logits = q @ k.transpose(-1, -2) / math.sqrt(8)
    slopes = pe.alibi_slopes(4)[:, None, None]
    rel = pe.relative_positions(6, 6)
    logits = logits + slopes * rel  # m (j - i) = -m (i - j)
    logits = logits.masked_fill(rel > 0, -math.inf)
    assert_close(out, logits.softmax(-1) @ v)


def test_dtype(dtype):
    got = pe.alibi_bias(8, 4, 4, dtype=dtype)
    assert got.dtype == dtype
    assert torch.isinf(got).sum() == 8 * 6
    ref = loop_bias(8, 4, 4, True, 0)
    assert_close(got.double(), ref, atol=1e-2, rtol=1e-2)
    with pytest.raises(TypeError, match="dtype"):
        pe.alibi_bias(8, 4, 4, dtype=torch.int32)


def test_k_len_defaults_to_q_len():
    assert torch.equal(pe.alibi_bias(2, 5), pe.alibi_bias(2, 5, 5))
