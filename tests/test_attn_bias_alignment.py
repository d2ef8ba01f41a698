"""Edge cases of the biased attention paths (issue 14): decoding alignment, head counts,
bool flags, float64 and empty inputs. Each test names the bug it catches."""

import math

import pytest
import torch

import posenc_lib as pe
from posenc_lib.flex_bias import attention_with_bias, flex_attention_available

BACKENDS = ["sdpa"] + (["flex_eager"] if flex_attention_available() else [])
H, S, D = 4, 8, 16


def _tables(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        "alibi": {"slopes": pe.alibi_slopes(H)},
        "t5": {"bias_table": torch.randn(32, H, generator=gen), "scale": 1.0},
        "shaw": {"rel_table": torch.randn(7, D, generator=gen)},
    }


def _qkv(seed=0, heads=H):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 2, heads, S, D, generator=gen)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scheme", ["alibi", "t5", "shaw"])
@pytest.mark.parametrize("causal", [True, False])
def test_one_decoding_query_is_the_last_row_of_the_full_pass(backend, scheme, causal):
    """Bug: 1 query against 8 keys was aligned to position 0 (top-left), so the causal
    output equalled the first value; queries now align bottom-right by default."""
    q, k, v = _qkv()
    kw = _tables()[scheme]
    full = attention_with_bias(q, k, v, scheme=scheme, causal=causal, backend=backend, **kw)
    for n_new in (1, 3):
        step = attention_with_bias(
            q[:, :, -n_new:], k, v, scheme=scheme, causal=causal, backend=backend, **kw
        )
        torch.testing.assert_close(step, full[:, :, -n_new:], atol=1e-5, rtol=1e-5)
    if causal:  # the old answer: query at position 0 sees only key 0
        step = attention_with_bias(
            q[:, :, -1:], k, v, scheme=scheme, causal=True, backend=backend, **kw
        )
        assert (step - v[:, :, :1]).abs().max() > 0.1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scheme", ["alibi", "t5", "shaw"])
def test_explicit_offset_is_a_block_of_the_full_pass(backend, scheme):
    """An explicit offset places the queries anywhere: rows 2..4 of the full pass."""
    q, k, v = _qkv(1)
    kw = _tables(1)[scheme]
    full = attention_with_bias(q, k, v, scheme=scheme, causal=True, backend=backend, **kw)
    block = attention_with_bias(
        q[:, :, 2:5], k, v, scheme=scheme, causal=True, backend=backend, offset=2, **kw
    )
    torch.testing.assert_close(block, full[:, :, 2:5], atol=1e-5, rtol=1e-5)


def test_offset_is_checked():
    q, k, v = _qkv()
    kw = _tables()["alibi"]
    with pytest.raises(ValueError, match="offset must be >= 0 with causal=True"):
        attention_with_bias(q, k, v, scheme="alibi", causal=True, offset=-1, backend="sdpa", **kw)
    with pytest.raises(TypeError, match="offset must be an int"):
        attention_with_bias(q, k, v, scheme="alibi", offset=1.5, backend="sdpa", **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_slopes", [2, 8])
def test_slopes_must_match_the_head_count(backend, n_slopes):
    """Bug: 8 slopes for 4 heads silently used the first 4 (flex); 2 slopes gave an
    IndexError or a broadcast error. Now a ValueError names slopes and both counts."""
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=rf"slopes must hold one slope per head: q has {H}"):
        attention_with_bias(
            q, k, v, scheme="alibi", slopes=pe.alibi_slopes(n_slopes), backend=backend
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_t5_columns_must_match_the_head_count(backend):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"bias_table must be \(num_buckets, heads\)"):
        attention_with_bias(
            q, k, v, scheme="t5", bias_table=torch.randn(32, H - 2), backend=backend
        )


def test_mismatched_qkv_shapes_are_named():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="same batch and heads"):
        attention_with_bias(q, k[:, :2], v, scheme="alibi", slopes=pe.alibi_slopes(H))
    with pytest.raises(ValueError, match="same batch and heads"):
        attention_with_bias(q, k, v[:, :, :3], scheme="alibi", slopes=pe.alibi_slopes(H))


@pytest.mark.parametrize("value", ["no", 0, 1, None, torch.tensor(True)])
def test_causal_must_be_a_bool(value):
    """Bug: causal="no" is truthy and was treated as True."""
    q, k, v = _qkv()
    slopes = pe.alibi_slopes(H)
    with pytest.raises(TypeError, match="causal must be True or False"):
        attention_with_bias(q, k, v, scheme="alibi", slopes=slopes, causal=value)
    with pytest.raises(TypeError, match="causal must be True or False"):
        pe.alibi_bias(H, S, causal=value)
    with pytest.raises(TypeError, match="causal must be True or False"):
        pe.attention_bias("alibi", H, S, causal=value)
    with pytest.raises(TypeError, match="causal must be True or False"):
        pe.attention_weights(q, k, causal=value)
    with pytest.raises(TypeError, match="causal must be True or False"):
        pe.MultiHeadAttention(16, 2, causal=value)


@pytest.mark.parametrize("causal", [True, False])
def test_alibi_bias_in_float64(causal):
    """Bug: dtype=torch.float64 raised 'value cannot be converted to type float without
    overflow' (float64's lowest value used as a float32 clamp bound)."""
    bias = pe.alibi_bias(8, 5, 7, causal=causal, offset=2, dtype=torch.float64)
    assert bias.dtype == torch.float64
    slopes = torch.tensor([2.0 ** (-(h + 1)) for h in range(8)], dtype=torch.float64)
    rel = torch.arange(7.0, dtype=torch.float64)[None] - (torch.arange(5.0) + 2)[:, None]
    expected = slopes[:, None, None] * (rel if causal else -rel.abs())
    if causal:
        expected = expected.masked_fill(rel > 0, float("-inf"))
    assert torch.equal(bias, expected)  # exact: slopes are powers of two, kept in float64


def test_alibi_slopes_dtype():
    assert pe.alibi_slopes(12, dtype=torch.float64).dtype == torch.float64
    torch.testing.assert_close(
        pe.alibi_slopes(12, dtype=torch.float64).float(), pe.alibi_slopes(12)
    )


@pytest.mark.parametrize("position", pe.POSITION_SCHEMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_empty_sequence_in_every_dtype(position, dtype):
    """Bug class: an empty sequence in half precision raised (IndexError / 'length must be
    >= 1'); it returns an empty result."""
    layer = pe.MultiHeadAttention(16, 2, position=position).to(dtype)
    y = layer(torch.randn(2, 0, 16, dtype=dtype))
    assert y.shape == (2, 0, 16) and y.dtype == dtype
    assert pe.alibi_bias(2, 0, dtype=dtype).shape == (2, 0, 0)


def test_alibi_float64_attention_matches_float32():
    q, k, v = _qkv()
    out64 = attention_with_bias(
        q.double(), k.double(), v.double(), scheme="alibi",
        slopes=pe.alibi_slopes(H, dtype=torch.float64), causal=True, backend="sdpa",
    )  # fmt: skip
    out32 = attention_with_bias(
        q, k, v, scheme="alibi", slopes=pe.alibi_slopes(H), causal=True, backend="sdpa"
    )
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, atol=1e-5, rtol=1e-5)


def test_sdpa_path_matches_hand_attention_for_rectangular_causal_t5():
    """The T5 mask of a rectangular block is bottom-right, as the bias (checked by hand)."""
    q, k, v = _qkv(2)
    table = _tables(2)["t5"]["bias_table"]
    out = attention_with_bias(
        q[:, :, -3:], k, v, scheme="t5", bias_table=table, scale=1.0, causal=True,
        bidirectional=False, backend="sdpa",
    )  # fmt: skip
    rel = torch.arange(S)[None] - torch.arange(S - 3, S)[:, None]
    bucket = pe.t5_relative_position_bucket(rel, bidirectional=False)
    scores = q[:, :, -3:] @ k.transpose(-1, -2) + table[bucket].permute(2, 0, 1)
    scores = scores.masked_fill(rel > 0, float("-inf"))
    torch.testing.assert_close(out, scores.softmax(-1) @ v, atol=1e-5, rtol=1e-5)
    assert math.isfinite(out.abs().max().item())


@pytest.mark.parametrize("scheme,causal,calls", [("alibi", True, 0), ("t5", True, 1)])
def test_sdpa_fallback_builds_the_mask_once(monkeypatch, scheme, causal, calls):
    """Bug: the causal ALiBi bias already holds the mask (-inf above the diagonal), yet the
    SDPA fallback built a causal mask again and applied it a second time."""
    from posenc_lib import flex_bias

    built = []
    real = flex_bias.causal_mask

    def counting(*args, **kwargs):
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(flex_bias, "causal_mask", counting)
    q, k, v = _qkv()
    kw = _tables()[scheme]
    out = attention_with_bias(q, k, v, scheme=scheme, causal=causal, backend="sdpa", **kw)
    assert len(built) == calls
    monkeypatch.undo()
    if flex_attention_available():
        ref = attention_with_bias(q, k, v, scheme=scheme, causal=causal, backend="flex_eager", **kw)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not flex_attention_available(), reason="needs FlexAttention")
def test_flex_past_the_recompile_limit_warns_and_takes_the_sdpa_path(monkeypatch):
    """Bug: past dynamo's recompile limit the compiled FlexAttention silently ran eagerly
    (unfused, 3-5x slower; only a log line said so). Now dynamo is told to raise, and the
    call warns with FlexRecompileLimitWarning and returns the SDPA path's answer.
    Dynamo's raise is simulated here; the slow test below hits the real limit."""
    import torch._dynamo

    from posenc_lib import flex_bias

    seen = {}

    def compiled(*args, **kwargs):
        seen["flag"] = torch._dynamo.config.fail_on_recompile_limit_hit
        raise torch._dynamo.exc.FailOnRecompileLimitHit("simulated")

    monkeypatch.setattr(flex_bias, "_compiled_flex", lambda: compiled)
    q, k, v = _qkv()
    kw = _tables()["t5"]
    with pytest.warns(flex_bias.FlexRecompileLimitWarning, match="recompile_limit"):
        out = attention_with_bias(q, k, v, scheme="t5", causal=True, backend="flex", **kw)
    assert seen["flag"] is True
    ref = attention_with_bias(q, k, v, scheme="t5", causal=True, backend="sdpa", **kw)
    torch.testing.assert_close(out, ref)


@pytest.mark.slow
@pytest.mark.skipif(not flex_attention_available(), reason="needs FlexAttention")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports
def test_flex_real_recompile_limit():
    """With recompile_limit = 1, a second shape really hits the limit (compiles once,
    about 30 s on a 2-core CPU). dynamo's own config.patch, not monkeypatch: restoring
    a dynamo config entry with setattr broke every later FlexAttention call."""
    import torch._dynamo

    from posenc_lib import flex_bias

    slopes = pe.alibi_slopes(2)
    first = torch.randn(1, 2, 16, 16)
    second = torch.randn(1, 2, 32, 16)
    torch._dynamo.reset()
    try:
        with torch._dynamo.config.patch(recompile_limit=1):
            attention_with_bias(first, first, first, scheme="alibi", slopes=slopes, backend="flex")
            with pytest.warns(flex_bias.FlexRecompileLimitWarning):
                out = attention_with_bias(
                    second, second, second, scheme="alibi", slopes=slopes, backend="flex"
                )
    finally:
        torch._dynamo.reset()
    ref = attention_with_bias(second, second, second, scheme="alibi", slopes=slopes, backend="sdpa")
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_attention_with_bias_on_an_empty_query_block(backend, dtype):
    """Bug: no queries raised (IndexError in the flex path, 'q_len must be >= 1' in the
    SDPA path); the answer is an empty tensor. No keys at all stays an error."""
    q = torch.randn(2, H, 0, D, dtype=dtype)
    k = v = torch.randn(2, H, 3, D, dtype=dtype)
    out = attention_with_bias(
        q, k, v, scheme="alibi", slopes=pe.alibi_slopes(H), causal=True, backend=backend
    )
    assert out.shape == (2, H, 0, D) and out.dtype == dtype
    with pytest.raises(ValueError, match="at least one key"):
        attention_with_bias(
            k, k[:, :, :0], v[:, :, :0], scheme="alibi", slopes=pe.alibi_slopes(H), backend=backend
        )
