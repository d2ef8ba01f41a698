"""Tests of posenc_lib.flex_bias: position biases through FlexAttention's score_mod.

Every path is checked against attention written out by hand in float64 (scores, bias,
softmax). The eager FlexAttention runs the same ``score_mod`` as the compiled kernel, so it
checks the maths quickly; one slow test compiles FlexAttention for the CPU (Inductor, tens of
seconds on a cold cache) to check the fused kernel itself.
"""

import math

import pytest
import torch

import posenc_lib as pe
from posenc_lib import flex_bias
from posenc_lib.flex_bias import (
    attention_with_bias,
    flex_attention_available,
    materialised_bias,
    shaw_score_mod,
)

pytestmark = pytest.mark.skipif(
    not flex_attention_available(), reason="torch.nn.attention.flex_attention is missing"
)

B, H, S, D = 2, 4, 20, 8


def _inputs(device, *, seed=0, q_len=S):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, q_len, D, generator=gen)
    k, v = torch.randn(2, B, H, S, D, generator=gen)
    extras = {
        "slopes": torch.tensor([2.0 ** -(h + 1) for h in range(H)]),
        "bias_table": torch.randn(32, H, generator=gen),
        "rel_table": torch.randn(2 * 3 + 1, D, generator=gen),
    }
    return [t.to(device) for t in (q, k, v)], {n: t.to(device) for n, t in extras.items()}


def _naive_bias(scheme, q, extras, *, scale, causal=True, bidirectional=True):
    """The bias entry by entry from its definition, float64, (batch, heads, q_len, kv_len)."""
    q_len = q.shape[-2]
    bias = torch.zeros(B, H, q_len, S, dtype=torch.float64)
    for i in range(q_len):
        for j in range(S):
            if scheme == "alibi":
                d = -(i - j) if causal else -abs(i - j)
                bias[:, :, i, j] = extras["slopes"].double().cpu() * d
                if causal and j > i:
                    bias[:, :, i, j] = float("-inf")
            elif scheme == "t5":
                bucket = pe.t5_relative_position_bucket(
                    torch.tensor(j - i),
                    bidirectional=bidirectional,
                    num_buckets=32,
                    max_distance=128,
                )
                bias[:, :, i, j] = extras["bias_table"][bucket].double().cpu()
            else:
                a = extras["rel_table"][min(max(j - i, -3), 3) + 3].double().cpu()
                bias[:, :, i, j] = scale * (q[:, :, i].double().cpu() @ a)
    return bias


def _naive_attention(q, k, v, bias, *, scale, causal):
    scores = scale * q.double().cpu() @ k.double().cpu().transpose(-1, -2) + bias
    if causal:
        keep = torch.ones(scores.shape[-2:], dtype=torch.bool).tril(S - q.shape[-2])
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v.double().cpu()


CASES = [
    ("alibi", {}),
    ("t5", {"scale": 1.0}),
    ("t5", {"scale": 1.0, "bidirectional": False}),
    ("shaw", {}),
]


@pytest.mark.parametrize("scheme,opts", CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("backend", ["flex_eager", "sdpa"])
def test_matches_naive_attention(device, scheme, opts, causal, backend):
    (q, k, v), extras = _inputs(device)
    scale = opts.get("scale", 1 / math.sqrt(D))
    needed = {"alibi": "slopes", "t5": "bias_table", "shaw": "rel_table"}[scheme]
    out = attention_with_bias(
        q, k, v, scheme=scheme, causal=causal, backend=backend, **{needed: extras[needed]}, **opts
    )
    bias = _naive_bias(
        scheme, q, extras, scale=scale, causal=causal, bidirectional=opts.get("bidirectional", True)
    )
    expected = _naive_attention(q, k, v, bias, scale=scale, causal=causal)
    assert out.shape == q.shape and out.dtype == q.dtype
    torch.testing.assert_close(out.cpu().double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scheme", ["alibi", "t5", "shaw"])
def test_materialised_bias_matches_definition(scheme):
    (q, _, _), extras = _inputs("cpu", seed=1)
    scale = 0.5
    bias = materialised_bias(
        scheme,
        q_len=S,
        kv_len=S,
        q=q,
        scale=scale,
        max_distance=128,
        causal=False,
        **{n: extras[n] for n in ("slopes", "bias_table", "rel_table")},
    )
    expected = _naive_bias(scheme, q, extras, scale=scale, causal=False)
    if scheme != "shaw":
        assert bias.shape == (H, S, S), "ALiBi and T5 do not depend on the batch"
        expected = expected[0]
    torch.testing.assert_close(bias.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_alibi_matches_library_bias(causal):
    """Both paths agree with the library's own ALiBi bias (pe.alibi_bias), both forms."""
    (q, k, v), _ = _inputs("cpu", seed=2)
    slopes = pe.alibi_slopes(H)
    bias = pe.alibi_bias(H, S, S, causal=causal)  # (heads, q_len, kv_len)
    torch.testing.assert_close(
        materialised_bias("alibi", q_len=S, kv_len=S, slopes=slopes, causal=causal), bias
    )
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = attention_with_bias(
        q, k, v, scheme="alibi", slopes=slopes, causal=causal, backend="flex_eager"
    )
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_t5_score_mod_table_is_linear_in_length():
    """The T5 path keeps one bias per offset, (2s - 1, heads), never a (s x s) tensor."""
    _, extras = _inputs("cpu")
    mod = flex_bias.t5_score_mod(extras["bias_table"], q_len=S, kv_len=S)
    cells = [c.cell_contents for c in mod.__closure__ if isinstance(c.cell_contents, torch.Tensor)]
    assert [tuple(c.shape) for c in cells] == [(2 * S - 1, H)]


@pytest.mark.parametrize("offset", [None, 0])
def test_rectangular_query_block(offset):
    """Fewer queries than keys (a decoding block): by default the 5 queries are the last 5
    positions (bottom-right, offset = 20 - 5); offset=0 puts them first."""
    (q, k, v), extras = _inputs("cpu", seed=3, q_len=5)
    kw = {"bias_table": extras["bias_table"], "scale": 1.0, "offset": offset}
    out = attention_with_bias(q, k, v, scheme="t5", backend="flex_eager", **kw)
    ref = attention_with_bias(q, k, v, scheme="t5", backend="sdpa", **kw)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # the naive bias of 20 queries, restricted to the 5 rows the block stands for
    q_full = torch.cat([torch.zeros(B, H, S - 5, D), q], dim=2) if offset is None else q
    bias = _naive_bias("t5", q_full, extras, scale=1.0)[:, :, -5:]
    torch.testing.assert_close(
        out.double(), _naive_attention(q, k, v, bias, scale=1.0, causal=False), atol=1e-5, rtol=1e-5
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports
def test_compiled_flex_matches_sdpa():
    """The fused (compiled) kernel, on the CPU through Inductor's C++ backend."""
    (q, k, v), extras = _inputs("cpu", seed=4)
    for scheme, kw in (
        ("alibi", {"slopes": extras["slopes"]}),
        ("t5", {"bias_table": extras["bias_table"], "scale": 1.0}),
    ):
        fused = attention_with_bias(q, k, v, scheme=scheme, causal=True, backend="flex", **kw)
        ref = attention_with_bias(q, k, v, scheme=scheme, causal=True, backend="sdpa", **kw)
        torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    (q, k, v), extras = _inputs("cpu")
    with pytest.raises(ValueError, match="scheme"):
        attention_with_bias(q, k, v, scheme="rope", slopes=extras["slopes"])
    with pytest.raises(ValueError, match="backend"):
        attention_with_bias(q, k, v, scheme="alibi", slopes=extras["slopes"], backend="xla")
    with pytest.raises(ValueError, match="needs the argument slopes"):
        attention_with_bias(q, k, v, scheme="alibi")
    with pytest.raises(ValueError, match="q must have 4 dimensions"):
        attention_with_bias(q[0], k, v, scheme="alibi", slopes=extras["slopes"])
    with pytest.raises(ValueError, match="rel_table"):
        shaw_score_mod(q, torch.randn(4, D), scale=1.0)


@pytest.mark.parametrize("q_len", [1, 127, 128, 129, 300])
@pytest.mark.parametrize("kv_len", [1, 128, 129, 300, 512])
def test_causal_block_mask_equals_create_block_mask(q_len, kv_len):
    """The causal BlockMask from block indices equals create_block_mask's (which evaluates
    the mask on every query-key pair), tensor for tensor, for every offset kind."""
    from torch.nn.attention.flex_attention import create_block_mask

    from posenc_lib.flex_bias import _causal_block_mask

    names = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices")
    names += tuple(n.replace("kv_", "q_") for n in names)
    for offset in sorted({0, 3, 130, max(kv_len - q_len, 0), kv_len}):
        ref = create_block_mask(
            lambda b, h, q, k, o=offset: q + o >= k, None, None, q_len, kv_len, device="cpu"
        )
        got = _causal_block_mask(q_len, kv_len, offset, "cpu")
        assert got.seq_lengths == ref.seq_lengths and got.BLOCK_SIZE == ref.BLOCK_SIZE
        for name in names:
            assert torch.equal(getattr(got, name), getattr(ref, name)), (name, offset)


def test_causal_flex_path_builds_no_dense_mask(monkeypatch):
    """attention_with_bias(causal=True) never evaluates the mask on all pairs."""
    import torch.nn.attention.flex_attention as fa

    def dense(*args, **kwargs):
        raise AssertionError("create_mask builds a (q_len, kv_len) tensor")

    monkeypatch.setattr(fa, "create_mask", dense)
    monkeypatch.setattr(fa, "create_block_mask", dense)
    q, k, v = torch.randn(3, 1, 2, 200, 8).unbind(0)
    slopes = pe.alibi_slopes(2)
    out = attention_with_bias(
        q, k, v, scheme="alibi", slopes=slopes, causal=True, backend="flex_eager"
    )
    ref = attention_with_bias(q, k, v, scheme="alibi", slopes=slopes, causal=True, backend="sdpa")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
