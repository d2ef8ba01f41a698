"""TinyTransformer: every scheme, the KV cache, lengths beyond training, training."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

import posenc_lib as pe

SCHEMES = pe.POSITION_SCHEMES
VOCAB = 11


def _model(position, **kwargs):
    torch.manual_seed(0)
    model = pe.TinyTransformer(
        VOCAB, d_model=16, num_heads=4, num_layers=2, max_len=32, position=position, **kwargs
    )
    for name, p in model.named_parameters():  # non-trivial position tables and biases
        if "t5" in name or "shaw" in name:
            torch.nn.init.normal_(p, std=0.5)
    return model.eval()


@pytest.mark.parametrize("position", SCHEMES)
@pytest.mark.parametrize("chunks", [(5, 1, 1, 1, 1, 1), (4, 3, 3, 2)])
def test_kv_cache_gives_the_full_forward_logits(position, chunks):
    model = _model(position)
    tokens = torch.randint(0, VOCAB, (2, sum(chunks)))
    with torch.no_grad():
        full = model(tokens)
        cache, pieces, start = model.new_kv_cache(), [], 0
        for size in chunks:
            pieces.append(model(tokens[:, start : start + size], kv_cache=cache))
            start += size
    assert cache.length == tokens.shape[1]
    assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("position", SCHEMES)
def test_generate_uses_the_cache_consistently(position):
    model = _model(position)
    prompt = torch.randint(0, VOCAB, (1, 4))
    out = model.generate(prompt, 6)
    assert out.shape == (1, 10) and torch.equal(out[:, :4], prompt)
    with torch.no_grad():  # greedy: each new token is the argmax of the full forward pass
        logits = model(out[:, :-1])
    assert torch.equal(logits[:, 3:].argmax(-1), out[:, 4:])


@pytest.mark.parametrize("position", [s for s in SCHEMES if s != "learned"])
def test_evaluates_beyond_max_len(position):
    model = _model(position)
    with torch.no_grad():
        logits = model(torch.randint(0, VOCAB, (1, 4 * 32)))
    assert torch.isfinite(logits).all()


def test_learned_table_refuses_positions_past_max_len():
    model = _model("learned")
    with pytest.raises(ValueError, match="max_len"):
        model(torch.randint(0, VOCAB, (1, 33)))


def test_nope_alias_and_errors():
    assert pe.TinyTransformer(VOCAB, position="nope").position == "none"
    with pytest.raises(ValueError, match="position"):
        pe.TinyTransformer(VOCAB, position="xpos")
    with pytest.raises(TypeError, match="integer"):
        _model("rope")(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="position='rope'"):
        _model("alibi").set_rope_scaling({"rope_type": "linear", "factor": 2.0})


def test_set_rope_scaling_changes_frequencies_not_weights():
    model = _model("rope")
    tokens = torch.randint(0, VOCAB, (1, 20))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        plain = model(tokens)
        model.set_rope_scaling({"rope_type": "linear", "factor": 4.0})
        scaled = model(tokens)
        rotary = model.blocks[0].attn.rotary
        assert_close(rotary.inv_freq, pe.rope_inv_freq(4)[0] / 4)
        model.set_rope_scaling(None)
        assert_close(model(tokens), plain)
    assert (scaled - plain).abs().max() > 1e-4
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("position", SCHEMES)
def test_forward_on_device_and_dtype(position, device, dtype):
    model = _model(position).to(device=device, dtype=dtype)
    logits = model(torch.randint(0, VOCAB, (2, 12), device=device))
    assert logits.shape == (2, 12, VOCAB) and logits.dtype == dtype
    assert torch.isfinite(logits).all()


def test_overfits_a_fixed_batch():
    """200 AdamW steps memorise 8 random sequences: the loss must collapse (~0.4 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest and immune to a busy CPU
    try:
        torch.manual_seed(0)
        model = pe.TinyTransformer(VOCAB, d_model=32, num_heads=4, num_layers=1, position="rope")
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        x = torch.randint(0, VOCAB, (8, 16))
        losses = []
        for _ in range(200):
            logits = model(x[:, :-1])  # predict token t+1 from tokens 0..t
            loss = F.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert abs(losses[0] - math.log(VOCAB)) < 0.3  # starts near uniform guessing
    assert sum(losses[-10:]) / 10 < 0.1 * losses[0]  # measured: 2.40 -> 0.04


def test_tied_weights_share_one_matrix():
    untied, tied = _model("rope"), _model("rope", tie_weights=True)
    assert tied.head.weight is tied.embed.weight
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * 16
    tokens = torch.randint(0, VOCAB, (1, 7))
    with torch.no_grad():
        cache = tied.new_kv_cache()
        pieces = [tied(tokens[:, :4], kv_cache=cache), tied(tokens[:, 4:], kv_cache=cache)]
        assert_close(torch.cat(pieces, dim=1), tied(tokens))


def test_learned_table_overflow_through_the_cache():
    model, cache = _model("learned"), None
    with torch.no_grad():
        cache = model.new_kv_cache()
        model(torch.randint(0, VOCAB, (1, 30)), kv_cache=cache)
        model(torch.randint(0, VOCAB, (1, 2)), kv_cache=cache)  # positions 30, 31: fine
        with pytest.raises(ValueError, match="max_len"):
            model(torch.randint(0, VOCAB, (1, 1)), kv_cache=cache)  # position 32


@pytest.mark.parametrize(
    "scaling",
    [
        {"rope_type": "linear", "factor": 4.0},
        {"rope_type": "ntk", "factor": 4.0},
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8},
        {
            "rope_type": "llama3",
            "factor": 4.0,
            "original_max_position_embeddings": 8,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
        },
    ],
    ids=lambda d: d["rope_type"],
)
def test_rope_scaling_keeps_the_cache_exact_at_4x_length(scaling):
    model = _model("rope")
    model.set_rope_scaling(scaling)
    tokens = torch.randint(0, VOCAB, (1, 4 * 8))
    with torch.no_grad():
        full = model(tokens)
        cache = model.new_kv_cache()
        pieces = [model(tokens[:, :20], kv_cache=cache)]
        pieces += [model(tokens[:, t : t + 1], kv_cache=cache) for t in range(20, 32)]
    assert torch.isfinite(full).all()
    assert_close(torch.cat(pieces, dim=1), full)


def test_set_rope_scaling_rejects_bad_input_without_changing_the_model():
    model = _model("rope")
    tokens = torch.randint(0, VOCAB, (1, 9))
    with torch.no_grad():
        before = model(tokens)
        with pytest.raises(ValueError, match="factor"):
            model.set_rope_scaling({"rope_type": "linear"}, base=500.0)
        with pytest.raises(ValueError, match="base"):
            model.set_rope_scaling(None, base=-1.0)
        assert_close(model(tokens), before)
        assert all(block.attn.rotary.base == 10_000.0 for block in model.blocks)


def test_bad_tokens_and_generate_arguments():
    model = _model("alibi")
    with pytest.raises(ValueError, match="vocab_size"):
        model(torch.tensor([[0, VOCAB]]))
    with pytest.raises(ValueError, match="vocab_size"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match="at least one token"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 3, greedy=False, temperature=0.0)


def test_sampling_is_reproducible_with_a_generator():
    model = _model("t5")
    prompt = torch.randint(0, VOCAB, (3, 2))
    runs = [
        model.generate(prompt, 8, greedy=False, generator=torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (3, 10)
    assert model.generate(prompt, 0).shape == (3, 2)


def test_sinusoidal_scale_input_scales_the_token_embeddings():
    model = pe.TinyTransformer(
        VOCAB, d_model=16, position="sinusoidal", sinusoidal_scale_input=True
    )
    tokens = torch.randint(0, VOCAB, (1, 5))
    expected = model.embed(tokens) * 4.0 + pe.sinusoidal_encoding(5, 16)  # sqrt(16) = 4
    assert_close(model.pos(model.embed(tokens)), expected)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports
def test_compiles_with_fullgraph_and_keeps_the_token_check(position="rope"):
    """Bug: torch.compile(fullgraph=True) failed on the data-dependent token-range check.
    The check now compiles (an assertion op in the graph) and still fires."""
    torch._dynamo.reset()
    model = pe.TinyTransformer(50, d_model=16, num_heads=2, num_layers=1, position=position)
    model.eval()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    tokens = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(compiled(tokens), model(tokens))
        with pytest.raises(RuntimeError, match=r"tokens must lie in \[0, vocab_size\)"):
            compiled(torch.full((2, 8), 50))
    torch._dynamo.reset()


def _left_pad(prompts, pad_id=0):
    width = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), width), pad_id)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for b, p in enumerate(prompts):
        tokens[b, width - len(p) :] = torch.tensor(p)
        mask[b, width - len(p) :] = 1
    return tokens, mask


@pytest.mark.parametrize(
    "position", ["rope", "none", "sinusoidal", "learned", "alibi", "t5", "shaw"]
)
def test_left_padded_batch_generation_matches_each_prompt_alone(position):
    """Bug: no padding mask or position_ids, so prompts of different lengths could not
    share a batch. With attention_mask, each row's prefill logits and greedy continuation
    equal those of its prompt alone."""
    torch.manual_seed(0)
    model = pe.TinyTransformer(
        30, d_model=16, num_heads=4, num_layers=2, position=position, num_kv_heads=2
    ).eval()
    for p in model.parameters():  # larger weights: distinct greedy tokens, tables matter
        torch.nn.init.normal_(p, std=0.3)
    prompts = [[3, 7, 1, 9, 4], [5, 2], [8]]
    tokens, mask = _left_pad(prompts, pad_id=11)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    if position in ("alibi", "t5", "shaw"):  # relative biases: the mask is enough
        with pytest.raises(ValueError, match="position_ids are not used"):
            model(tokens, attention_mask=mask, position_ids=position_ids)
        position_ids = None
    with torch.no_grad():
        logits = model(tokens, attention_mask=mask, position_ids=position_ids)
        batched = model.generate(tokens, 4, attention_mask=mask)
        for b, p in enumerate(prompts):
            alone = torch.tensor([p])
            torch.testing.assert_close(logits[b, -len(p) :], model(alone)[0], atol=1e-4, rtol=1e-4)
            assert batched[b, -4:].tolist() == model.generate(alone, 4)[0, -4:].tolist()
        # the control: without the mask the padded row's logits are not its own
        unmasked = model(tokens)[1, -2:]
        assert (unmasked - model(torch.tensor([prompts[1]]))[0]).abs().max() > 1e-2
