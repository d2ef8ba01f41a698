"""MultiHeadAttention, attention_bias and attention_weights."""

import math

import pytest
import torch
from conftest import assert_close

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


@pytest.mark.parametrize("position", SCHEMES)
def test_runs_on_device_and_in_bfloat16(position, device):
    layer = _layer(position).to(device=device, dtype=torch.bfloat16)
    y = layer(torch.randn(2, 9, 16, device=device, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and y.device.type == device.type
    assert torch.isfinite(y).all()
