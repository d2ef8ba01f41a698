"""Tests for posenc_lib.rope_scaling via pe.rope_inv_freq: hand-worked values, scalar
re-derivations from the papers, Hugging Face transformers equivalence, bad input."""

import inspect
import math

import pytest
import torch
from conftest import assert_close

import posenc_lib as pe

YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048}
LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
DYNAMIC = {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 2048}


def plain(head_dim, base):
    """base ** (-2i/d) written with math, one pair at a time."""
    return torch.tensor(
        [math.pow(base, -2 * i / head_dim) for i in range(head_dim // 2)], dtype=torch.float64
    )


def close32(actual, expected, rtol=1e-6):
    assert actual.dtype == torch.float32
    assert_close(actual.double(), expected.double(), atol=0.0, rtol=rtol)


# ------------------------------------------------------------------ hand-worked / formulas


def test_default_and_legacy_type_key():
    inv, att = pe.rope_inv_freq(8)
    assert att == 1.0 and inv.shape == (4,)
    close32(inv, torch.tensor([1.0, 0.1, 0.01, 0.001], dtype=torch.float64))
    inv2, _ = pe.rope_inv_freq(8, scaling={"type": "default"})
    assert torch.equal(inv, inv2)


def test_linear_divides_by_factor():
    inv, att = pe.rope_inv_freq(64, scaling={"type": "linear", "factor": 4.0})
    close32(inv, plain(64, 10_000.0) / 4)
    assert att == 1.0


def test_static_ntk_keeps_first_and_interpolates_last_pair():
    d, s = 64, 8.0
    inv, _ = pe.rope_inv_freq(d, scaling={"rope_type": "ntk", "factor": s})
    assert inv[0].item() == 1.0
    close32(inv[-1:], plain(d, 10_000.0)[-1:] / s)
    close32(inv, plain(d, 10_000.0 * s ** (d / (d - 2))))


@pytest.mark.parametrize("seq_len", [None, 1, 2048])
def test_dynamic_is_plain_up_to_original_length(seq_len):
    inv, _ = pe.rope_inv_freq(64, scaling=DYNAMIC, seq_len=seq_len)
    close32(inv, plain(64, 10_000.0))


def test_dynamic_base_grows_beyond_original_length():
    d = 64
    # seq_len = 2 * L0, factor 4: base * (4 * 2 - 3) ** (d / (d - 2))
    inv, _ = pe.rope_inv_freq(d, scaling=DYNAMIC, seq_len=4096)
    close32(inv, plain(d, 10_000.0 * 5 ** (d / (d - 2))))
    longer, _ = pe.rope_inv_freq(d, scaling=DYNAMIC, seq_len=8192)
    assert (longer[1:] < inv[1:]).all()


def yarn_reference(d, base, factor, orig, beta_fast=32.0, beta_slow=1.0):
    """YaRN by parts, scalar: pair i turns r_i = orig / wavelength_i times in the context."""

    def index(r):  # pair index at which r_i == r
        return d * math.log(orig / (2 * math.pi * r)) / (2 * math.log(base))

    lo, hi = max(math.floor(index(beta_fast)), 0), min(math.ceil(index(beta_slow)), d - 1)
    out = []
    for i in range(d // 2):
        theta = base ** (-2 * i / d)
        gamma = min(max((i - lo) / (hi - lo), 0.0), 1.0)  # 0: keep, 1: interpolate
        out.append(theta * (1 - gamma) + theta / factor * gamma)
    return torch.tensor(out, dtype=torch.float64)


def test_yarn_matches_scalar_derivation_and_paper_scaling():
    inv, att = pe.rope_inv_freq(128, scaling=YARN)
    close32(inv, yarn_reference(128, 10_000.0, 4.0, 2048))
    assert att == pytest.approx(0.1 * math.log(4) + 1)  # Peng et al. eq. 22: 1.1386
    theta = plain(128, 10_000.0)
    turns = 2048 * theta / (2 * math.pi)
    assert torch.equal(inv[turns > 32].double(), theta[turns > 32].float().double())
    close32(inv[turns < 1], theta[turns < 1] / 4)


def test_yarn_attention_factor_overrides():
    _, att = pe.rope_inv_freq(64, scaling=dict(YARN, attention_factor=1.5))
    assert att == 1.5
    _, att = pe.rope_inv_freq(64, scaling=dict(YARN, mscale=1.0, mscale_all_dim=1.0))
    assert att == 1.0  # DeepSeek-V2 style ratio of equal mscales
    _, att = pe.rope_inv_freq(64, scaling=dict(YARN, factor=1.0))
    assert att == 1.0


def test_llama31_bands_hand_counted():
    # Llama 3.1: base 5e5, d 128. Wavelength 2 pi 5e5^(i/64) < 2048 iff i <= 28 (kept);
    # > 8192 iff i >= 35 (divided by 8); pairs 29..34 are blended.
    inv, att = pe.rope_inv_freq(128, base=500_000.0, scaling=LLAMA3)
    theta = plain(128, 500_000.0)
    ratio = theta / inv.double()
    assert att == 1.0
    assert_close(ratio[:29], torch.ones(29, dtype=torch.float64), atol=0, rtol=1e-6)
    assert_close(ratio[35:], torch.full((29,), 8.0, dtype=torch.float64), atol=0, rtol=1e-6)
    assert ((ratio[29:35] > 1) & (ratio[29:35] < 8)).all()
    assert (ratio[29:35].diff() > 0).all()


# ------------------------------------------------------------------ Hugging Face equivalence


def hf_inv_freq(head_dim, base, params, max_pos, seq_len=None):
    pytest.importorskip("transformers")
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    sizes = dict(
        hidden_size=2 * head_dim,
        num_attention_heads=2,
        head_dim=head_dim,
        max_position_embeddings=max_pos,
    )
    if "rope_parameters" in inspect.signature(LlamaConfig.__init__).parameters:  # >= 5.0
        cfg = LlamaConfig(rope_parameters=dict(params, rope_theta=base), **sizes)
    else:  # 4.x: rope_theta and rope_scaling
        scaling = None if params["rope_type"] == "default" else params
        cfg = LlamaConfig(rope_theta=base, rope_scaling=scaling, **sizes)
    emb = LlamaRotaryEmbedding(config=cfg)
    if seq_len is not None:  # dynamic RoPE recomputes from the largest position id + 1
        emb(torch.zeros(1), torch.arange(seq_len)[None])
    return emb.inv_freq.double(), float(emb.attention_scaling)


HF_CASES = {
    "default": ({"rope_type": "default"}, 4096, None),
    "linear": ({"rope_type": "linear", "factor": 4.0}, 4096, None),
    "dynamic_long": ({"rope_type": "dynamic", "factor": 4.0}, 2048, 10_000),
    "dynamic_short": ({"rope_type": "dynamic", "factor": 4.0}, 2048, 1000),
    "yarn": (YARN, 8192, None),
    "yarn_betas": (dict(YARN, beta_fast=16.0, beta_slow=2.0, attention_factor=1.2), 8192, None),
    "yarn_mscale": (dict(YARN, factor=40.0, mscale=1.0, mscale_all_dim=0.707), 81920, None),
    "llama3": (LLAMA3, 131_072, None),
}


@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("base", [10_000.0, 500_000.0])
@pytest.mark.parametrize("case", list(HF_CASES))
def test_matches_hugging_face(case, head_dim, base):
    params, max_pos, seq_len = HF_CASES[case]
    expected, expected_att = hf_inv_freq(head_dim, base, params, max_pos, seq_len)
    ours = dict(params)
    if params["rope_type"] == "dynamic":  # HF takes L0 from max_position_embeddings
        ours["original_max_position_embeddings"] = max_pos
    inv, att = pe.rope_inv_freq(head_dim, base=base, scaling=ours, seq_len=seq_len)
    close32(inv, expected)
    assert att == pytest.approx(expected_att, rel=1e-12)


def test_cos_sin_match_hugging_face_tables():
    pytest.importorskip("transformers")
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    if "rope_parameters" not in inspect.signature(LlamaConfig.__init__).parameters:
        pytest.skip("needs transformers >= 5 config API")
    cfg = LlamaConfig(
        hidden_size=128,
        num_attention_heads=2,
        head_dim=64,
        max_position_embeddings=8192,
        rope_parameters=dict(YARN, rope_theta=10_000.0),
    )
    pos = torch.arange(0, 8192, 37)
    emb = LlamaRotaryEmbedding(cfg)
    hf_cos, hf_sin = emb(torch.zeros(1), pos[None])
    # same float32 frequencies -> same tables (HF repeats the angles for the two halves)
    cos, sin = pe.rope_cos_sin(pos, emb.inv_freq, attention_scaling=emb.attention_scaling)
    assert_close(torch.cat((cos, cos), -1), hf_cos[0], atol=1e-6, rtol=0)
    assert_close(torch.cat((sin, sin), -1), hf_sin[0], atol=1e-6, rtol=0)
    # our own frequencies: float32 rounding (<= 3e-7 relative) times positions up to 8e3
    inv, att = pe.rope_inv_freq(64, scaling=YARN)
    cos, sin = pe.rope_cos_sin(pos, inv, attention_scaling=att)
    assert_close(torch.cat((cos, cos), -1), hf_cos[0], atol=1e-3, rtol=0)
    assert_close(torch.cat((sin, sin), -1), hf_sin[0], atol=1e-3, rtol=0)


# ------------------------------------------------------------------ module + errors


def test_rotary_embedding_dynamic_recomputes(device):
    rot = pe.RotaryEmbedding(16, scaling=dict(DYNAMIC, original_max_position_embeddings=8))
    rot.to(device)
    for seq in (4, 8, 20):
        q = torch.randn(1, 2, seq, 16, device=device)
        out, _ = rot(q, q)
        inv, _ = pe.rope_inv_freq(16, scaling=rot.scaling, seq_len=seq, device=device)
        cos, sin = pe.rope_cos_sin(seq, inv)
        assert_close(out, pe.apply_rope(q, cos, sin))
    plain_out = pe.apply_rope(q, *pe.rope_cos_sin(20, pe.rope_inv_freq(16, device=device)[0]))
    assert not torch.allclose(out, plain_out, atol=1e-3)


def test_set_scaling_switches_rule():
    rot = pe.RotaryEmbedding(16)
    rot.cos_sin(10)
    rot.set_scaling({"rope_type": "linear", "factor": 2.0})
    close32(
        rot.cos_sin(10)[0],
        torch.cos(torch.outer(torch.arange(10.0).double(), plain(16, 1e4) / 2)),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "scaling, err, match",
    [
        ([("rope_type", "linear")], TypeError, "scaling must be None or a dict"),
        ({"factor": 2.0}, ValueError, "rope_type"),
        ({"rope_type": "su", "factor": 2.0}, ValueError, r"rope_type.*one of"),
        ({"rope_type": "longrope", "factor": 2.0}, ValueError, r"short_factor.*required"),
        ({"rope_type": "linear"}, ValueError, r"scaling\['factor'\] is required"),
        ({"rope_type": "linear", "factor": 0.5}, ValueError, r"factor.*>= 1"),
        ({"rope_type": "linear", "factor": float("nan")}, ValueError, "factor"),
        ({"rope_type": "linear", "factor": "2"}, TypeError, "factor"),
        ({"rope_type": "linear", "factr": 2.0}, ValueError, "unknown key"),
        ({"rope_type": "linear", "type": "yarn", "factor": 2.0}, ValueError, "type"),
        ({"rope_type": "yarn", "factor": 2.0}, ValueError, "original_max_position_embeddings"),
        ({"rope_type": "dynamic", "factor": 2.0}, ValueError, "original_max_position_embeddings"),
        (dict(YARN, original_max_position_embeddings=2048.0), TypeError, "original_max"),
        (dict(YARN, beta_fast=1.0, beta_slow=2.0), ValueError, "beta_fast"),
        (dict(YARN, attention_factor=-1.0), ValueError, "attention_factor"),
        (dict(LLAMA3, low_freq_factor=4.0), ValueError, "high_freq_factor"),
        (
            {k: v for k, v in LLAMA3.items() if k != "low_freq_factor"},
            ValueError,
            r"scaling\['low_freq_factor'\] is required",
        ),
        ({"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}, ValueError, "base="),
    ],
)
def test_bad_scaling(scaling, err, match):
    with pytest.raises(err, match=match):
        pe.rope_inv_freq(64, scaling=scaling)


def test_bad_arguments():
    with pytest.raises(ValueError, match="head_dim must be even"):
        pe.rope_inv_freq(7)
    with pytest.raises(ValueError, match="head_dim must be >= 4"):
        pe.rope_inv_freq(2, scaling={"rope_type": "ntk", "factor": 2.0})
    with pytest.raises(ValueError, match="base"):
        pe.rope_inv_freq(8, base=0.0)
    with pytest.raises(ValueError, match="base must be a finite number > 1"):
        pe.rope_inv_freq(8, base=1.0, scaling=YARN)
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        pe.rope_inv_freq(8, scaling=DYNAMIC, seq_len=0)
    with pytest.raises(TypeError, match="seq_len must be an int"):
        pe.rope_inv_freq(8, scaling=DYNAMIC, seq_len=10.5)
