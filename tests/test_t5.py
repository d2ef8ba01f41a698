"""Tests of posenc_lib.t5: bucket ids (hand table, reference implementation, properties)
and the per-head bias module."""

import math

import pytest
import torch
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import posenc_lib as pe

# Hand-computed, num_buckets=32, max_distance=128 (relative position = key - query).
# Bidirectional: 16 buckets per sign, max_exact = 8; a distance r >= 8 goes to
# 8 + floor(log(r/8) / log(128/8) * 8), e.g. r = 16: 8 + floor(8 * 1/4) = 10; keys after the
# query add 16. Unidirectional: max_exact = 16, r = 32: 16 + floor(16 * log 2 / log 8) = 21.
HAND_BIDIRECTIONAL = {
    0: 0,
    -1: 1,
    -7: 7,
    -8: 8,
    -16: 10,
    -32: 12,
    -64: 14,
    -127: 15,
    -128: 15,
    -1000: 15,
    1: 17,
    7: 23,
    8: 24,
    16: 26,
    32: 28,
    64: 30,
    128: 31,
    10**6: 31,
}
HAND_UNIDIRECTIONAL = {
    5: 0,
    1: 0,
    0: 0,
    -1: 1,
    -15: 15,
    -16: 16,
    -32: 21,
    -64: 26,
    -127: 31,
    -128: 31,
    -999: 31,
}


@pytest.mark.parametrize(
    ("bidirectional", "table"), [(True, HAND_BIDIRECTIONAL), (False, HAND_UNIDIRECTIONAL)]
)
def test_hand_table(bidirectional, table):
    rel = torch.tensor(list(table))
    got = pe.t5_relative_position_bucket(rel, bidirectional=bidirectional)
    assert got.dtype == torch.long
    assert got.tolist() == list(table.values())


def test_formula_written_another_way():
    """Above max_exact: bucket = max_exact + floor(log_{n_d/max_exact}(r/max_exact) *
    (n - max_exact)), evaluated in float64 away from the integer boundaries."""
    for r in [9, 11, 20, 50, 100]:
        expected = 8 + math.floor(math.log(r / 8, 16) * 8)
        assert pe.t5_relative_position_bucket(-r).item() == expected
        assert pe.t5_relative_position_bucket(r).item() == 16 + expected


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(("num_buckets", "max_distance"), [(32, 128), (8, 20), (64, 512), (6, 5)])
def test_matches_transformers_reference(bidirectional, num_buckets, max_distance):
    modeling_t5 = pytest.importorskip("transformers.models.t5.modeling_t5")
    rel = pe.relative_positions(70, 900, offset=400)
    ref = modeling_t5.T5Attention._relative_position_bucket(
        rel, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    )
    got = pe.t5_relative_position_bucket(
        rel, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    )
    assert torch.equal(got, ref)


@settings(max_examples=40, deadline=None)
@given(num_buckets=st.integers(4, 64), extra=st.integers(1, 300), bidirectional=st.booleans())
def test_monotone_and_in_range(num_buckets, extra, bidirectional):
    max_exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
    max_distance = max_exact + extra
    dist = torch.arange(0, 3 * max_distance)
    kw = {"bidirectional": bidirectional, "num_buckets": num_buckets, "max_distance": max_distance}
    past = pe.t5_relative_position_bucket(-dist, **kw)
    future = pe.t5_relative_position_bucket(dist, **kw)
    for buckets in (past, future):
        assert (buckets.diff() >= 0).all(), "buckets must not decrease with |distance|"
        assert buckets.min() >= 0 and buckets.max() < num_buckets
    # exact buckets for small distances, one shared last bucket far away
    assert past[:max_exact].tolist() == list(range(max_exact))
    assert (
        past[-1] == past[max_distance] == (num_buckets // 2 if bidirectional else num_buckets) - 1
    )
    if bidirectional:
        assert future[0] == 0 and (future[1:] >= num_buckets // 2).all()
        assert (past < num_buckets // 2).all()
    else:
        assert (future == 0).all()


def test_bucket_input_checks():
    with pytest.raises(TypeError, match="integer dtype"):
        pe.t5_relative_position_bucket(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="num_buckets must be >= 4"):
        pe.t5_relative_position_bucket(torch.tensor([1]), num_buckets=2)
    with pytest.raises(ValueError, match="max_distance must be > max_exact = 8"):
        pe.t5_relative_position_bucket(torch.tensor([1]), max_distance=8)
    assert pe.t5_relative_position_bucket(-3).item() == 3  # plain ints work


def test_bias_module_matches_table_lookup(device):
    torch.manual_seed(0)
    mod = pe.T5RelativePositionBias(3, num_buckets=8, max_distance=16).to(device)
    bias = mod(5, 9, offset=4)
    assert bias.shape == (3, 5, 9) and bias.device.type == device.type
    weight = mod.embedding.weight.detach()
    for i in range(5):
        for j in range(9):
            bucket = pe.t5_relative_position_bucket(j - (i + 4), num_buckets=8, max_distance=16)
            assert_close(bias[:, i, j], weight[bucket.item()])
    # queries at the end of a KV cache see the last rows of the full bias
    assert_close(mod(9, 9)[:, 4:], bias)
    # the bias only depends on j - i (Toeplitz)
    assert_close(bias[:, 1:, 1:], bias[:, :-1, :-1])


def test_bias_module_unidirectional_and_checks():
    mod = pe.T5RelativePositionBias(2, bidirectional=False)
    bias = mod(6, 6)
    assert_close(
        bias.triu(1), mod.embedding.weight[0].detach()[:, None, None].expand(2, 6, 6).triu(1)
    )  # every future key uses bucket 0
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        pe.T5RelativePositionBias(0)


@settings(max_examples=40, deadline=None)
@given(
    q_len=st.integers(0, 12),
    k_len=st.integers(0, 140),
    offset=st.integers(-4, 140),
    bidirectional=st.booleans(),
)
def test_bias_from_diagonals_equals_the_per_pair_lookup(q_len, k_len, offset, bidirectional):
    """forward() looks the table up once per distance; it must equal looking up the bucket
    of every (i, j) pair, in value and in gradient."""
    torch.manual_seed(q_len + k_len)
    t5 = pe.T5RelativePositionBias(3, bidirectional=bidirectional).double()
    fast = t5(q_len, k_len, offset=offset)
    slow = t5.embedding(t5.buckets(q_len, k_len, offset=offset)).permute(2, 0, 1)
    assert fast.shape == (3, q_len, k_len)
    assert torch.equal(fast, slow)
    w = torch.randn_like(fast)
    (g_fast,) = torch.autograd.grad((fast * w).sum(), t5.embedding.weight)
    (g_slow,) = torch.autograd.grad((slow * w).sum(), t5.embedding.weight)
    assert_close(g_fast, g_slow, rtol=1e-12, atol=1e-12)


def test_bias_offset_is_validated_as_given():
    t5 = pe.T5RelativePositionBias(2)
    with pytest.raises(TypeError, match="offset"):
        t5(2, 3, offset=True)
    with pytest.raises(TypeError, match=r"offset.*0\.5"):
        t5(2, 3, offset=0.5)
