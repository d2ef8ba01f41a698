"""TinyTransformer: every scheme, the KV cache, lengths beyond training, training."""

import pytest
import torch
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


@pytest.mark.parametrize("position", SCHEMES)
def test_forward_on_device_and_bfloat16(position, device):
    model = _model(position).to(device=device, dtype=torch.bfloat16)
    logits = model(torch.randint(0, VOCAB, (2, 12), device=device))
    assert logits.shape == (2, 12, VOCAB) and torch.isfinite(logits).all()


def test_a_few_steps_of_training_reduce_the_loss():
    """Learn to copy the previous token: the loss must fall by a robust margin."""
    torch.manual_seed(0)
    model = pe.TinyTransformer(VOCAB, d_model=32, num_heads=4, num_layers=1, position="rope")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        x = torch.randint(0, VOCAB, (16, 12))
        logits = model(x)[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), x[:, :-1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
