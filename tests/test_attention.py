"""MultiHeadAttention, attention_bias and attention_weights."""

import math

import pytest
import torch
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import posenc_lib as pe

SCHEMES = pe.POSITION_SCHEMES


def _layer(position, *, causal=True, d_model=16, num_heads=4, seed=0):
    torch.manual_seed(seed)
    layer = pe.MultiHeadAttention(d_model, num_heads, position=position, causal=causal)
    for p in layer.parameters():  # non-zero relative tables, so that they matter
        torch.nn.init.normal_(p, std=0.3)
    return layer.eval()


def test_no_positions_is_permutation_equivariant():
    layer = _layer("none", causal=False)
    x = torch.randn(2, 7, 16)
    perm = torch.randperm(7)
    with torch.no_grad():
        assert_close(layer(x[:, perm]), layer(x)[:, perm])


@pytest.mark.parametrize("position", ["rope", "alibi", "t5", "shaw"])
def test_relative_schemes_break_permutation_equivariance(position):
    layer = _layer(position, causal=False)
    x = torch.randn(1, 7, 16)
    perm = torch.tensor([6, 0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        gap = (layer(x[:, perm]) - layer(x)[:, perm]).abs().max()
    assert gap > 1e-3


@pytest.mark.parametrize("position", SCHEMES)
@pytest.mark.parametrize("causal", [True, False])
def test_matches_explicit_attention(position, causal):
    """Against softmax(q k^T / sqrt(d) + B) v written out with the public bias helper."""
    layer = _layer(position, causal=causal)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        q, k, v = layer.qkv(x).view(2, 6, 3, 4, 4).permute(2, 0, 3, 1, 4)
        if position == "rope":
            q, k = layer.rotary(q, k)
        if position == "shaw":
            bias = torch.stack(
                [
                    pe.attention_bias("shaw", 4, 6, q=q[b], module=layer.shaw, causal=causal)
                    for b in range(2)
                ]
            )
        else:
            module = layer.t5 if position == "t5" else None
            bias = pe.attention_bias(position, 4, 6, causal=causal, module=module)
        w = pe.attention_weights(q, k, bias=bias)
        y = w @ v
        if position == "shaw":
            y = y + layer.shaw.value_term(w, 6, 6)
        expected = layer.out(y.transpose(1, 2).reshape(2, 6, 16))
        assert_close(layer(x), expected)


def test_attention_weights_rows_sum_to_one_and_respect_causality():
    q, k = torch.randn(3, 5, 8), torch.randn(3, 5, 8)
    w = pe.attention_weights(q, k, causal=True)
    assert_close(w.sum(-1), torch.ones(3, 5))
    assert (w.triu(1) == 0).all()
    manual = (
        (q @ k.transpose(-1, -2) / math.sqrt(8))
        .masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
        .softmax(-1)
    )
    assert_close(w, manual)


def test_attention_bias_alibi_is_the_library_bias():
    assert_close(pe.attention_bias("alibi", 8, 5, causal=True), pe.alibi_bias(8, 5, 5, causal=True))


@pytest.mark.parametrize("scheme", ["none", "sinusoidal", "learned", "rope"])
def test_attention_bias_is_zero_for_schemes_without_a_bias(scheme):
    bias = pe.attention_bias(scheme, 2, 3, 4)
    assert bias.shape == (2, 3, 4) and not bias.any()
    masked = pe.attention_bias(scheme, 2, 3, causal=True)
    assert torch.isinf(masked).sum() == 2 * 3  # the 3 entries above the diagonal, per head


def test_attention_bias_t5_depends_on_distance_only():
    bias = pe.attention_bias("t5", 3, 6, module=pe.T5RelativePositionBias(3))
    for d in range(-5, 6):
        diag = torch.diagonal(bias, offset=d, dim1=1, dim2=2)
        assert_close(diag, diag[:, :1].expand_as(diag))


def test_attention_bias_errors():
    with pytest.raises(ValueError, match="scheme"):
        pe.attention_bias("xpos", 2, 3)
    with pytest.raises(ValueError, match="pass q and module"):
        pe.attention_bias("shaw", 2, 3)
    with pytest.raises(ValueError, match="num_heads"):
        pe.attention_bias("alibi", 0, 3)


def test_bad_construction():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        pe.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="position"):
        pe.MultiHeadAttention(16, 4, position="xpos")
    with pytest.raises(ValueError, match="even"):
        pe.MultiHeadAttention(12, 4, position="rope")  # head_dim 3
    with pytest.raises(ValueError, match="d_model"):
        pe.MultiHeadAttention(16, 4)(torch.randn(1, 3, 8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("position", SCHEMES)
def test_runs_on_device_and_dtype(position, device, dtype):
    layer = _layer(position).to(device=device, dtype=dtype)
    y = layer(torch.randn(2, 9, 16, device=device, dtype=dtype))
    assert y.dtype == dtype and y.device.type == device.type
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("position", SCHEMES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 40)])
def test_output_shape(position, shape):
    layer = _layer(position)
    with torch.no_grad():
        assert layer(torch.randn(*shape, 16)).shape == (*shape, 16)


@pytest.mark.parametrize("position", ["sinusoidal", "learned"])
def test_absolute_schemes_are_plain_attention_inside_the_layer(position):
    """The absolute tables are added to the input (by the model): the layer is 'none'."""
    plain, layer = _layer("none", causal=False), _layer(position, causal=False)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        assert_close(layer(x), plain(x))


@pytest.mark.parametrize("scheme", ["sinusoidal", "learned"])
def test_absolute_tables_added_to_the_input_break_permutation_equivariance(scheme):
    layer = _layer("none", causal=False)
    if scheme == "sinusoidal":
        add = pe.SinusoidalPositionalEncoding(16)
    else:
        add = pe.LearnedPositionalEmbedding(8, 16, init_std=1.0)
    x = torch.randn(1, 7, 16)
    perm = torch.tensor([6, 0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        gap = (layer(add(x[:, perm])) - layer(add(x))[:, perm]).abs().max()
        assert_close(layer(x[:, perm]), layer(x)[:, perm])  # without the table: equivariant
    assert gap > 1e-3


@pytest.mark.parametrize("position", SCHEMES)
@pytest.mark.parametrize("chunks", [(4, 1, 1, 1), (3, 3, 3), (1, 1, 1)])
def test_layer_kv_cache_matches_the_full_pass(position, chunks):
    """Queries at positions cache.length.. see the cached keys: same output as one pass."""
    layer = _layer(position)
    x = torch.randn(2, sum(chunks), 16)
    cache, pieces, start = pe.LayerKVCache(), [], 0
    with torch.no_grad():
        full = layer(x)
        for size in chunks:
            pieces.append(layer(x[:, start : start + size], kv_cache=cache))
            start += size
    assert cache.length == x.shape[1] and cache.keys.shape == (2, 4, x.shape[1], 4)
    assert_close(torch.cat(pieces, dim=1), full)


@settings(max_examples=25, deadline=None)
@given(
    position=st.sampled_from(SCHEMES),
    chunks=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=5),
)
def test_any_split_into_cached_chunks_matches_the_full_pass(position, chunks):
    layer = _layer(position)
    x = torch.randn(1, sum(chunks), 16)
    cache, pieces, start = pe.LayerKVCache(), [], 0
    with torch.no_grad():
        for size in chunks:
            pieces.append(layer(x[:, start : start + size], kv_cache=cache))
            start += size
        assert_close(torch.cat(pieces, dim=1), layer(x))


def test_kv_cache_refuses_a_different_batch():
    layer, cache = _layer("rope"), pe.LayerKVCache()
    with torch.no_grad():
        layer(torch.randn(2, 3, 16), kv_cache=cache)
        with pytest.raises(ValueError, match="cached"):
            layer(torch.randn(1, 1, 16), kv_cache=cache)


@pytest.mark.parametrize("scheme", ["alibi", "t5", "shaw", "rope"])
def test_attention_bias_with_offset_is_a_block_of_the_full_bias(scheme):
    """Queries 2..4 against keys 0..4 (a KV cache of 2) are rows 2..4 of the 5x5 bias."""
    module = {"t5": pe.T5RelativePositionBias(3), "shaw": pe.ShawRelativePosition(4)}.get(scheme)
    q = torch.randn(3, 5, 4)
    kwargs = {"module": module, "causal": True}
    full = pe.attention_bias(scheme, 3, 5, q=q, **kwargs)
    part = pe.attention_bias(scheme, 3, 3, 5, offset=2, q=q[:, 2:], **kwargs)
    assert_close(part, full[:, 2:])


@pytest.mark.parametrize("causal", [True, False])
def test_attention_bias_alibi_by_hand(causal):
    """Two heads: slopes 2^(-8h/n) = 1/16, 1/256; bias -m |i - j| (-inf above if causal)."""
    bias = pe.attention_bias("alibi", 2, 3, causal=causal)
    dist = torch.tensor([[0.0, 1, 2], [1, 0, 1], [2, 1, 0]])
    expected = torch.stack([-dist / 16, -dist / 256])
    if causal:
        expected = expected.masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf"))
    assert_close(bias, expected)
    assert_close(bias, pe.alibi_bias(2, 3, 3, causal=causal))


def test_attention_bias_shaw_by_hand():
    """B_h[i, j] = q_h,i . w^K[clip(j - i, -k, k) + k] / sqrt(d), written as a loop."""
    shaw = pe.ShawRelativePosition(4, max_distance=1)
    torch.nn.init.normal_(shaw.key_table.weight)
    q = torch.randn(2, 4, 4)
    bias = pe.attention_bias("shaw", 2, 4, q=q, module=shaw)
    table = shaw.key_table.weight.detach()
    expected = torch.empty(2, 4, 4)
    for h in range(2):
        for i in range(4):
            for j in range(4):
                expected[h, i, j] = q[h, i] @ table[max(-1, min(1, j - i)) + 1] / 2.0
    assert_close(bias, expected)


def test_bad_dropout():
    with pytest.raises(ValueError, match="dropout"):
        pe.MultiHeadAttention(16, 4, dropout=1.0)
