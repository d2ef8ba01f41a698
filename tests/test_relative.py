"""Tests of posenc_lib.relative: relative positions, Shaw et al. (2018), Transformer-XL."""

import math

import pytest
import torch
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import posenc_lib as pe


@settings(max_examples=30, deadline=None)
@given(q_len=st.integers(0, 7), k_len=st.integers(0, 7), offset=st.integers(-5, 5))
def test_relative_positions_definition(q_len, k_len, offset):
    rel = pe.relative_positions(q_len, k_len, offset=offset)
    assert rel.dtype == torch.long and rel.shape == (q_len, k_len)
    for i in range(q_len):
        for j in range(k_len):
            assert rel[i, j] == j - (i + offset)


def test_relative_positions_hand_and_kv_cache(device):
    assert pe.relative_positions(2, 3).tolist() == [[0, 1, 2], [-1, 0, 1]]
    full = pe.relative_positions(6, 6, device=device)
    assert full.device.type == device.type
    # the last 2 queries against all 6 keys are the last 2 rows of the full matrix
    assert torch.equal(pe.relative_positions(2, 6, offset=4, device=device), full[4:])
    with pytest.raises(ValueError, match="q_len must be >= 0"):
        pe.relative_positions(-1, 3)


# ----------------------------------------------------------------------------- Shaw


def test_shaw_indices_clip():
    idx = pe.shaw_relative_indices(1, 8, max_distance=2, offset=3)  # j - 3 = -3 .. 4
    assert idx.tolist() == [[0, 0, 1, 2, 3, 4, 4, 4]]


def naive_shaw(q, k, v, wk, wv, max_distance):
    """Shaw et al. eqs. (3)-(4) entry by entry, float64."""
    b, h, n, d = q.shape
    out = torch.zeros(b, h, n, d, dtype=torch.float64)
    for bi in range(b):
        for hi in range(h):
            for i in range(n):
                logits = torch.zeros(k.shape[2], dtype=torch.float64)
                for j in range(k.shape[2]):
                    r = min(max(j - i, -max_distance), max_distance) + max_distance
                    logits[j] = q[bi, hi, i].double() @ (k[bi, hi, j].double() + wk[r].double())
                alpha = torch.softmax(logits / math.sqrt(d), 0)
                for j in range(k.shape[2]):
                    r = min(max(j - i, -max_distance), max_distance) + max_distance
                    out[bi, hi, i] += alpha[j] * (v[bi, hi, j].double() + wv[r].double())
    return out


def test_shaw_attention_matches_definition(device):
    torch.manual_seed(0)
    b, h, n, d, kmax = 2, 3, 7, 4, 2
    rel = pe.ShawRelativePosition(d, max_distance=kmax, init_std=1.0).to(device)
    q, k, v = (torch.randn(b, h, n, d, device=device) for _ in range(3))
    logits = (q @ k.transpose(-1, -2) + rel.key_bias(q, n, n)) / math.sqrt(d)
    alpha = logits.softmax(-1)
    out = alpha @ v + rel.value_term(alpha, n, n)
    expected = naive_shaw(
        q.cpu(),
        k.cpu(),
        v.cpu(),
        rel.key_table.weight.detach().cpu(),
        rel.value_table.weight.detach().cpu(),
        kmax,
    )
    assert_close(out.double().cpu(), expected)


def test_shaw_clipping_shares_edge_vectors():
    torch.manual_seed(1)
    rel = pe.ShawRelativePosition(4, max_distance=2, init_std=1.0)
    emb = rel.key_embeddings(1, 9, offset=4)[0]  # distances -4 .. 4
    table = rel.key_table.weight.detach()
    for j, dist in enumerate(range(-4, 5)):
        assert torch.equal(emb[j], table[min(max(dist, -2), 2) + 2])
    # -4, -3, -2 share the edge vector w_{-2}; 2, 3, 4 share w_{2}
    assert torch.equal(emb[0], emb[2]) and torch.equal(emb[1], emb[2])
    assert torch.equal(emb[-1], emb[-3]) and torch.equal(emb[-2], emb[-3])
    assert not torch.equal(emb[2], emb[3])  # inside the window the vectors differ


def test_shaw_functions_against_loops():
    torch.manual_seed(2)
    q = torch.randn(2, 2, 3, 5)
    a = torch.randn(3, 4, 5)
    kl = pe.shaw_key_logits(q, a)
    alpha = torch.rand(2, 2, 3, 4)
    vt = pe.shaw_value_term(alpha, a)
    for i in range(3):
        for j in range(4):
            assert_close(kl[..., i, j], (q[..., i, :] * a[i, j]).sum(-1))
        assert_close(vt[..., i, :], sum(alpha[..., i, j, None] * a[i, j] for j in range(4)))
    with pytest.raises(ValueError, match="rel_emb_k must be"):
        pe.shaw_key_logits(q, torch.randn(4, 4, 5))
    with pytest.raises(ValueError, match="rel_emb_v must be"):
        pe.shaw_value_term(alpha, torch.randn(3, 5, 5))


def test_shaw_offset_matches_last_rows_and_errors():
    rel = pe.ShawRelativePosition(4, max_distance=3, values=False)
    q = torch.randn(1, 2, 6, 4)
    full = rel.key_bias(q, 6, 6)
    assert_close(rel.key_bias(q[:, :, 4:], 2, 6, offset=4), full[:, :, 4:])
    with pytest.raises(ValueError, match="values=False"):
        rel.value_term(torch.rand(1, 2, 6, 6), 6, 6)
    with pytest.raises(ValueError, match="q_len=5 does not match"):
        rel.key_bias(q, 5, 6)
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        pe.ShawRelativePosition(4, max_distance=-1)


# ------------------------------------------------------------------- Transformer-XL


def test_absolute_logit_expansion_is_exact():
    torch.manual_seed(3)
    d, dh = 8, 4
    x, p = torch.randn(5, d, dtype=torch.float64), torch.randn(5, d, dtype=torch.float64)
    w_q, w_k = torch.randn(d, dh, dtype=torch.float64), torch.randn(d, dh, dtype=torch.float64)
    terms = pe.absolute_logit_terms(x, x, p, p, w_q, w_k)
    direct = ((x + p) @ w_q) @ ((x + p) @ w_k).T
    assert_close(terms.total, direct, atol=1e-12, rtol=0)
    assert_close(terms.content_position, (x @ w_q) @ (p @ w_k).T, atol=1e-12, rtol=0)
    assert_close(terms.position_content, (p @ w_q) @ (x @ w_k).T, atol=1e-12, rtol=0)
    # single vectors give scalars
    one = pe.absolute_logit_terms(x[0], x[1], p[0], p[1], w_q, w_k)
    assert one.content_content.ndim == 0
    assert_close(one.total, direct[0, 1], atol=1e-12, rtol=0)


def test_transformer_xl_distances_sign():
    dist = pe.transformer_xl_distances(3, 3)
    assert dist.tolist() == [[0, -1, -2], [1, 0, -1], [2, 1, 0]]
    assert torch.equal(dist, -pe.relative_positions(3, 3))


def naive_xl(q, k, r, u, v, w_r):
    b, h, n, _ = q.shape
    m = k.shape[2]
    out = torch.zeros(b, h, n, m, dtype=torch.float64)
    for hi in range(h):
        for i in range(n):
            for j in range(m):
                wr = w_r[hi].double() @ r[i, j].double()
                qi, kj = q[:, hi, i].double(), k[:, hi, j].double()  # (batch, head_dim)
                out[:, hi, i, j] = (
                    (qi * kj).sum(-1) + qi @ wr + kj @ u[hi].double() + v[hi].double() @ wr
                )
    return out


def test_transformer_xl_logits_match_definition():
    torch.manual_seed(4)
    b, h, n, m, dh, dm = 2, 3, 4, 6, 5, 8
    q, k = torch.randn(b, h, n, dh), torch.randn(b, h, m, dh)
    u, v, w_r = torch.randn(h, dh), torch.randn(h, dh), torch.randn(h, dh, dm)
    dist = pe.transformer_xl_distances(n, m, offset=m - n)
    r = pe.sinusoidal_encoding(dist.flatten(), dm, layout="concat").view(n, m, dm)
    logits, terms = pe.transformer_xl_logits(q, k, r, u, v, w_r, return_terms=True)
    assert_close(logits.double(), naive_xl(q, k, r, u, v, w_r), atol=1e-4, rtol=1e-5)
    assert_close(sum(terms[1:], terms[0]), logits)
    # term (c) does not depend on the query, term (d) only on i - j
    assert_close(terms[2][:, :, 0], terms[2][:, :, -1])
    d = terms[3][0, 0]
    assert_close(d[1:, 1:], d[:-1, :-1])
    with pytest.raises(ValueError, match="r must be"):
        pe.transformer_xl_logits(q, k, r[:, :-1], u, v, w_r)


def test_transformer_xl_module_equals_function(device):
    torch.manual_seed(5)
    mod = pe.TransformerXLRelativeBias(8, 2, 4).to(device)
    q, k = torch.randn(3, 2, 3, 4, device=device), torch.randn(3, 2, 5, 4, device=device)
    r = mod.encodings(3, 5, offset=2)
    expected = pe.transformer_xl_logits(q, k, r, mod.u, mod.v, mod.w_r)
    assert_close(mod(q, k, offset=2), expected, atol=1e-5, rtol=1e-5)
    # R_{i-j}: the diagonal i = j (offset 2: column = row + 2) encodes distance 0
    assert_close(r[0, 2], pe.sinusoidal_encoding(1, 8, layout="concat", device=device)[0])


@settings(max_examples=25, deadline=None)
@given(
    q_len=st.integers(1, 9),
    k_len=st.integers(1, 9),
    offset=st.integers(-3, 6),
    max_distance=st.integers(0, 4),
)
def test_shaw_compact_terms_equal_the_literal_gathered_table(q_len, k_len, offset, max_distance):
    """key_bias / value_term never build the (q_len, k_len, d) table; values and gradients
    must equal the literal form (shaw_key_logits / shaw_value_term on the gathered rows)."""
    torch.manual_seed(q_len * 100 + k_len * 10 + max_distance)
    rel = pe.ShawRelativePosition(5, max_distance=max_distance, init_std=1.0).double()
    q = torch.randn(2, 3, q_len, 5, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(2, 3, q_len, k_len, dtype=torch.float64, requires_grad=True)
    params = [q, alpha, rel.key_table.weight, rel.value_table.weight]

    compact = (
        rel.key_bias(q, q_len, k_len, offset=offset),
        rel.value_term(alpha, q_len, k_len, offset=offset),
    )
    literal = (
        pe.shaw_key_logits(q, rel.key_embeddings(q_len, k_len, offset=offset)),
        (pe.shaw_value_term(alpha, rel.value_embeddings(q_len, k_len, offset=offset))),
    )
    for a, b in zip(compact, literal, strict=True):
        assert_close(a, b, rtol=1e-12, atol=1e-12)
    w = [torch.randn_like(t) for t in compact]
    g_compact = torch.autograd.grad(
        sum((t * u).sum() for t, u in zip(compact, w, strict=True)), params
    )
    g_literal = torch.autograd.grad(
        sum((t * u).sum() for t, u in zip(literal, w, strict=True)), params
    )
    for a, b in zip(g_compact, g_literal, strict=True):
        assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_shaw_terms_accumulate_half_precision_in_float32(device):
    """Every key past the clip distance adds into one edge row; in bf16 a running sum of
    many small weights would stall (CUDA adds atomically in the tensor's dtype), so the
    terms accumulate in float32 and only the result is cast back."""
    torch.manual_seed(0)
    rel = pe.ShawRelativePosition(4, max_distance=1).to(device)
    n = 4096
    alpha = torch.full((1, 1, 1, n), 1.0 / n, dtype=torch.bfloat16, device=device)
    out = rel.value_term(alpha, 1, n, offset=n - 1)
    # all weight on the edge row (distance <= -1) except the last key
    want = rel.value_table.weight[0] * (1 - 1 / n) + rel.value_table.weight[1] / n
    assert out.dtype == torch.bfloat16
    assert_close(out[0, 0, 0].float(), want, rtol=2e-2, atol=2e-3)
    q = torch.randn(1, 1, 1, 4, dtype=torch.bfloat16, device=device)
    assert rel.key_bias(q, 1, n, offset=n - 1).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"q must be \(batch, heads, q_len, head_dim=4\)"):
        rel.key_bias(torch.randn(1, 1, 3, 5, device=device), 3, 4)
