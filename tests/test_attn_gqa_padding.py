"""MultiHeadAttention for generation with batches (issue 14): grouped-query attention,
a padding mask over the keys, explicit position_ids, and a shared T5 table.

Each test compares against a run that needs no new feature: a plain multi-head layer
with repeated key/value weights, or each sequence run alone without padding."""

import math

import pytest
import torch

import posenc_lib as pe

D_MODEL, HEADS = 16, 4
SCHEMES = pe.POSITION_SCHEMES


def _layer(position, *, seed=0, causal=True, **kw):
    torch.manual_seed(seed)
    layer = pe.MultiHeadAttention(D_MODEL, HEADS, position=position, causal=causal, **kw)
    for p in layer.parameters():  # non-zero relative tables, so that they matter
        torch.nn.init.normal_(p, std=0.3)
    return layer.eval()


def _expanded_mha(gqa, position, causal):
    """A plain multi-head layer computing the same function as the grouped one."""
    full = _layer(position, causal=causal)
    hd, group = gqa.head_dim, gqa.num_heads // gqa.num_kv_heads
    w = gqa.qkv.weight.detach()
    wq, wk, wv = w.split([D_MODEL, gqa.num_kv_heads * hd, gqa.num_kv_heads * hd])
    rep = [t.view(gqa.num_kv_heads, hd, D_MODEL).repeat_interleave(group, 0).reshape(-1, D_MODEL)
           for t in (wk, wv)]  # fmt: skip
    with torch.no_grad():
        full.qkv.weight.copy_(torch.cat([wq, *rep]))
        full.out.weight.copy_(gqa.out.weight)
        full.load_state_dict(
            {n: p for n, p in gqa.state_dict().items() if not n.startswith(("qkv", "out"))},
            strict=False,
        )
    return full


@pytest.mark.parametrize("position", SCHEMES)
@pytest.mark.parametrize("num_kv_heads", [1, 2])
@pytest.mark.parametrize("causal", [True, False])
def test_grouped_query_attention_is_mha_with_repeated_kv_heads(position, num_kv_heads, causal):
    """Query head h uses kv head h // (heads / kv_heads), as Hugging Face's repeat_kv."""
    gqa = _layer(position, causal=causal, num_kv_heads=num_kv_heads)
    assert gqa.qkv.out_features == D_MODEL + 2 * num_kv_heads * (D_MODEL // HEADS)
    full = _expanded_mha(gqa, position, causal)
    x = torch.randn(2, 7, D_MODEL)
    with torch.no_grad():
        torch.testing.assert_close(gqa(x), full(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("position", SCHEMES)
def test_grouped_query_kv_cache_stores_kv_heads_and_matches_full_pass(position):
    layer = _layer(position, num_kv_heads=2)
    x = torch.randn(2, 6, D_MODEL)
    cache = pe.LayerKVCache()
    with torch.no_grad():
        full = layer(x)
        steps = torch.cat([layer(x[:, :3], kv_cache=cache)]
                          + [layer(x[:, i : i + 1], kv_cache=cache) for i in range(3, 6)], 1)  # fmt: skip
    assert cache.keys.shape == (2, 2, 6, D_MODEL // HEADS)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)


def test_num_kv_heads_is_checked():
    with pytest.raises(ValueError, match="num_kv_heads must divide num_heads=4"):
        pe.MultiHeadAttention(16, 4, num_kv_heads=3)
    with pytest.raises(TypeError, match="num_kv_heads must be an int"):
        pe.MultiHeadAttention(16, 4, num_kv_heads=2.0)


def _left_padded(lengths, total, seed=1):
    """Sequences of the given lengths, left-padded to ``total`` with noise (not zeros, so
    that a pad that leaks into the result shows)."""
    gen = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(n, D_MODEL, generator=gen) for n in lengths]
    x = torch.randn(len(lengths), total, D_MODEL, generator=gen) * 5
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for b, s in enumerate(seqs):
        x[b, total - len(s) :] = s
        mask[b, total - len(s) :] = 1
    return seqs, x, mask


def _position_ids(mask):
    return (mask.cumsum(-1) - 1).clamp(min=0)


@pytest.mark.parametrize("position", SCHEMES)
def test_left_padded_batch_matches_each_sequence_alone(position):
    """Bug: no padding mask, so a batch of prompts of different lengths attended to the
    pads. With attention_mask (and position_ids for RoPE) each row equals its sequence
    run alone, and rows on padding are zeros, never nan."""
    layer = _layer(position)
    seqs, x, mask = _left_padded([6, 3, 1], 6)
    pos = _position_ids(mask) if position == "rope" else None
    with torch.no_grad():
        batched = layer(x, attention_mask=mask, position_ids=pos)
        for b, s in enumerate(seqs):
            alone = layer(s[None])[0]
            torch.testing.assert_close(batched[b, 6 - len(s) :], alone, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(batched).all()
    assert batched[2, :5].abs().max() == 0  # queries on padding see no key: zeros


@pytest.mark.parametrize("position", SCHEMES)
def test_left_padded_decoding_with_the_cache_matches_each_sequence_alone(position):
    """Prefill a left-padded batch, then decode 3 tokens a step at a time: each output
    equals the full pass over that sequence alone (the KV cache vs full pass check)."""
    layer = _layer(position, num_kv_heads=2)
    seqs, x, mask = _left_padded([4, 2], 4, seed=2)
    new = torch.randn(2, 3, D_MODEL, generator=torch.Generator().manual_seed(3))
    cache = pe.LayerKVCache()
    rope = position == "rope"
    with torch.no_grad():
        outs = [layer(x, kv_cache=cache, attention_mask=mask,
                      position_ids=_position_ids(mask) if rope else None)]  # fmt: skip
        for t in range(3):
            mask = torch.cat([mask, torch.ones(2, 1, dtype=mask.dtype)], dim=1)
            pos = _position_ids(mask)[:, -1:] if rope else None
            outs.append(
                layer(new[:, t : t + 1], kv_cache=cache, attention_mask=mask, position_ids=pos)
            )
        out = torch.cat(outs, dim=1)
        for b, s in enumerate(seqs):
            alone = layer(torch.cat([s, new[b]])[None])[0]
            torch.testing.assert_close(out[b, 4 - len(s) :], alone, atol=1e-5, rtol=1e-5)


def test_position_ids_shift_rope_like_an_offset():
    """position_ids = offset + arange gives the cached pass's rotation; (seq,) broadcasts."""
    layer = _layer("rope")
    x = torch.randn(2, 5, D_MODEL)
    with torch.no_grad():
        plain = layer(x)
        same = layer(x, position_ids=torch.arange(5))
        shifted = layer(x, position_ids=torch.arange(5) + 7)
    torch.testing.assert_close(same, plain)
    torch.testing.assert_close(shifted, plain, atol=1e-5, rtol=1e-5)  # RoPE is relative


def test_mask_and_position_ids_are_checked():
    layer = _layer("rope")
    x = torch.randn(2, 4, D_MODEL)
    with pytest.raises(ValueError, match=r"attention_mask must be \(batch, k_len\) = \(2, 4\)"):
        layer(x, attention_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="attention_mask must be bool or integer"):
        layer(x, attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="only 0"):
        layer(x, attention_mask=torch.full((2, 4), 2))
    with pytest.raises(ValueError, match=r"position_ids must be \(batch, seq\)"):
        layer(x, position_ids=torch.arange(3))
    with pytest.raises(TypeError, match="position_ids must be integers"):
        layer(x, position_ids=torch.arange(4.0))
    with pytest.raises(ValueError, match="position_ids must be >= 0"):
        layer(x, position_ids=torch.arange(4) - 1)
    with pytest.raises(ValueError, match="position_ids are used by RoPE only"):
        _layer("alibi")(x, position_ids=torch.arange(4))


def test_shared_t5_table_is_one_parameter_across_layers():
    """t5_bias= shares one table, as T5 computes the bias once per stack."""
    table = pe.T5RelativePositionBias(HEADS, bidirectional=False)
    layers = torch.nn.ModuleList(
        pe.MultiHeadAttention(D_MODEL, HEADS, position="t5", t5_bias=table) for _ in range(3)
    )
    assert all(layer.t5 is table for layer in layers)
    n_table = table.embedding.weight.numel()
    n_own = sum(p.numel() for p in layers[0].parameters()) - n_table
    assert sum(p.numel() for p in layers.parameters()) == 3 * n_own + n_table
    x = torch.randn(1, 5, D_MODEL)
    for layer in layers:
        x = layer(x)
    x.sum().backward()
    assert table.embedding.weight.grad is not None and table.embedding.weight.grad.abs().sum() > 0


def test_shared_t5_table_is_checked():
    with pytest.raises(ValueError, match="t5_bias must have one column per head"):
        pe.MultiHeadAttention(16, 4, position="t5", t5_bias=pe.T5RelativePositionBias(2))
    with pytest.raises(ValueError, match="t5_bias.bidirectional must be False"):
        pe.MultiHeadAttention(16, 4, position="t5", t5_bias=pe.T5RelativePositionBias(4))
    with pytest.raises(ValueError, match="t5_bias needs position='t5'"):
        pe.MultiHeadAttention(16, 4, position="rope", t5_bias=pe.T5RelativePositionBias(4))


@pytest.mark.parametrize("scale_logits", [True, False])
def test_t5_logits_scaled_or_not(scale_logits):
    """t5_scale_logits=False gives T5's softmax(Q K^T + B) V, with no 1/sqrt(d_k)."""
    layer = _layer("t5", causal=False, t5_scale_logits=scale_logits)
    x = torch.randn(1, 5, D_MODEL)
    with torch.no_grad():
        q, k, v = layer.qkv(x).view(1, 5, 3, HEADS, 4).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / (math.sqrt(4) if scale_logits else 1.0)
        y = (scores + layer.t5(5, 5)).softmax(-1) @ v
        expected = layer.out(y.transpose(1, 2).reshape(1, 5, D_MODEL))
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_tiny_transformer_shares_one_t5_table_like_t5():
    """TinyTransformer(t5_bias=table) forwards the table to every layer: one parameter set
    for the stack, and the KV cache still matches the full pass."""
    table = pe.T5RelativePositionBias(HEADS, bidirectional=False)
    torch.manual_seed(0)
    model = pe.TinyTransformer(
        20, d_model=D_MODEL, num_heads=HEADS, num_layers=3, position="t5", t5_bias=table,
        t5_scale_logits=False,
    ).eval()  # fmt: skip
    assert all(block.attn.t5 is table for block in model.blocks)
    torch.nn.init.normal_(table.embedding.weight, std=0.5)
    tokens = torch.randint(0, 20, (2, 7), generator=torch.Generator().manual_seed(1))
    cache = model.new_kv_cache()
    with torch.no_grad():
        full = model(tokens)
        steps = torch.cat([model(tokens[:, :4], kv_cache=cache)]
                          + [model(tokens[:, i : i + 1], kv_cache=cache) for i in range(4, 7)], 1)  # fmt: skip
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)
