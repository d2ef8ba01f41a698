"""Interoperability with Hugging Face transformers and interleaved (Meta / torchtune)
checkpoints: rope_parameters dicts, longrope, the dynamic-scaling convention, the
(b, s, d) cos/sin tables and importing weights of either pair layout."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import posenc_lib as pe

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig  # noqa: E402
from transformers.models.llama.modeling_llama import (  # noqa: E402
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)

HEAD_DIM, HEADS = 16, 2


def _hf_rope(rope_parameters, max_pos=64, seq=40):
    config = LlamaConfig(
        hidden_size=HEAD_DIM * HEADS,
        num_attention_heads=HEADS,
        max_position_embeddings=max_pos,
        rope_parameters=dict(rope_parameters),
    )
    rope = LlamaRotaryEmbedding(config)
    x = torch.zeros(1, seq, HEAD_DIM)
    cos, sin = rope(x, torch.arange(seq)[None])
    return cos, sin


def _ours(rope_parameters, max_pos=64, seq=40):
    rot = pe.RotaryEmbedding.from_hf(HEAD_DIM, rope_parameters, max_position_embeddings=max_pos)
    return rot.cos_sin(seq)


PARAMS = [
    {"rope_type": "default", "rope_theta": 500_000.0},
    {"rope_type": "linear", "rope_theta": 10_000.0, "factor": 4.0},
    {"rope_type": "dynamic", "rope_theta": 10_000.0, "factor": 2.0},
    {
        "rope_type": "yarn",
        "rope_theta": 10_000.0,
        "factor": 4.0,
        "original_max_position_embeddings": 16,
    },
    {
        "rope_type": "llama3",
        "rope_theta": 500_000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    },
]


@pytest.mark.parametrize("params", PARAMS, ids=[p["rope_type"] for p in PARAMS])
@pytest.mark.parametrize("seq", [20, 100])  # below and beyond max_position_embeddings
def test_rope_parameters_match_hugging_face(params, seq):
    hf_cos, hf_sin = _hf_rope(params, max_pos=64, seq=seq)
    cos, sin = pe.cos_sin_from_hf(hf_cos, hf_sin)
    ours_cos, ours_sin = _ours(params, max_pos=64, seq=seq)
    assert_close(ours_cos, cos[0, 0], atol=2e-5, rtol=0)
    assert_close(ours_sin, sin[0, 0], atol=2e-5, rtol=0)


def test_longrope_matches_hugging_face_formula_short_and_long():
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    gen = torch.Generator().manual_seed(0)
    short = (1 + torch.rand(HEAD_DIM // 2, generator=gen)).tolist()
    long = (1 + 4 * torch.rand(HEAD_DIM // 2, generator=gen)).tolist()
    params = {
        "rope_type": "longrope",
        "rope_theta": 10_000.0,
        "short_factor": short,
        "long_factor": long,
        "original_max_position_embeddings": 32,
    }
    config = LlamaConfig(
        hidden_size=HEAD_DIM * HEADS,
        num_attention_heads=HEADS,
        max_position_embeddings=128,
        rope_parameters=dict(params),
    )
    kw = pe.rope_kwargs_from_hf(params, max_position_embeddings=128)
    assert kw["scaling"]["factor"] == 4.0  # max_position_embeddings / original
    for seq_len in (None, 32, 33, 100):
        hf_inv, hf_att = ROPE_INIT_FUNCTIONS["longrope"](config, "cpu", seq_len=seq_len)
        inv, att = pe.rope_inv_freq(
            HEAD_DIM, base=kw["base"], scaling=kw["scaling"], seq_len=seq_len
        )
        assert_close(inv, hf_inv, rtol=1e-6, atol=0)
        assert att == pytest.approx(hf_att, rel=1e-12)
    with pytest.raises(ValueError, match="long_factor'] must have head_dim // 2 = 8 entries"):
        pe.rope_inv_freq(HEAD_DIM, scaling=dict(kw["scaling"], long_factor=[1.0]), seq_len=99)


def test_rope_parameters_errors_and_partial_rotary():
    with pytest.raises(ValueError, match="rope_theta"):
        pe.rope_kwargs_from_hf({"rope_type": "default"})
    with pytest.raises(ValueError, match="dynamic' needs max_position_embeddings"):
        pe.rope_kwargs_from_hf({"rope_type": "dynamic", "rope_theta": 1e4, "factor": 2.0})
    rot = pe.RotaryEmbedding.from_hf(
        64, {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5}
    )
    assert rot.rotary_dim == 32 and rot.base == 1e4


def test_hf_tables_adapter_gives_hf_rotation():
    torch.manual_seed(0)
    q, k = torch.randn(2, HEADS, 12, HEAD_DIM), torch.randn(2, 1, 12, HEAD_DIM)
    hf_cos, hf_sin = _hf_rope(PARAMS[0], seq=12)
    hf_cos, hf_sin = hf_cos.expand(2, -1, -1), hf_sin.expand(2, -1, -1)
    hq, hk = apply_rotary_pos_emb(q, k, hf_cos, hf_sin)
    cos, sin = pe.cos_sin_from_hf(hf_cos, hf_sin)
    assert cos.shape == (2, 1, 12, HEAD_DIM // 2)
    assert_close(pe.apply_rope(q, cos, sin), hq)
    assert_close(pe.apply_rope(k, cos, sin), hk)
    with pytest.raises(ValueError, match="two halves differ"):
        # an interleaved-layout table (repeat_interleave, as GPT-J / Meta build them)
        interleaved = hf_cos[..., : HEAD_DIM // 2].repeat_interleave(2, dim=-1)
        pe.cos_sin_from_hf(interleaved, hf_sin)


@pytest.mark.parametrize("rotary_dim", [HEAD_DIM, HEAD_DIM // 2])
def test_importing_interleaved_weights_each_way(rotary_dim):
    """A checkpoint trained with interleaved pairs (Meta, torchtune): either keep its
    weights and say layout="interleaved", or permute its q/k rows and keep "half".
    Both give the attention scores of the original model; using it unchanged with the
    default layout does not."""
    torch.manual_seed(0)
    d_model, seq = HEAD_DIM * HEADS, 10
    wq, wk = torch.randn(d_model, d_model), torch.randn(d_model, d_model)
    x = torch.randn(1, seq, d_model)

    def scores(wq, wk, layout):
        rot = pe.RotaryEmbedding(HEAD_DIM, layout=layout, rotary_dim=rotary_dim)
        q = (x @ wq.T).view(1, seq, HEADS, HEAD_DIM).transpose(1, 2)
        k = (x @ wk.T).view(1, seq, HEADS, HEAD_DIM).transpose(1, 2)
        q, k = rot(q, k)
        return q @ k.transpose(-1, -2)

    original = scores(wq, wk, "interleaved")  # the model as trained
    pq = pe.permute_qk_weight(wq, HEADS, rotary_dim=rotary_dim)
    pk = pe.permute_qk_weight(wk, HEADS, rotary_dim=rotary_dim)
    assert_close(scores(pq, pk, "half"), original, atol=1e-4, rtol=1e-4)
    assert (scores(wq, wk, "half") - original).abs().max() > 1.0  # the silent mistake
    back = pe.permute_qk_weight(pq, HEADS, to="interleaved", rotary_dim=rotary_dim)
    assert torch.equal(back, wq)


def test_single_tensor_call_equals_the_pair_call():
    rot = pe.RotaryEmbedding(HEAD_DIM)
    q, k = torch.randn(2, 4, 7, HEAD_DIM), torch.randn(2, 1, 7, HEAD_DIM)
    oq, ok = rot(q, k, offset=5)
    assert torch.equal(rot.rotate(q, offset=5), oq)
    assert torch.equal(rot.rotate(k, offset=5), ok)


def test_package_ships_py_typed():
    from importlib.resources import files

    assert files("posenc_lib").joinpath("py.typed").is_file()
