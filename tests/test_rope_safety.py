"""RoPE inputs that used to give silent wrong answers, and the fixes (issue 14).

Each test fails on the library before the fix: bf16 frequencies after ``.to(bf16)``,
bool positions, bases <= 1, ``(batch, seq, heads, head_dim)`` tensors rotated by head
index, whole-table rebuilds per decoding step under dynamic scaling, and
``torch.compile(fullgraph=True)`` graph breaks on data-dependent checks.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import posenc_lib as pe
from posenc_lib import rope_module

# ------------------------------------------------------------- module dtype


@pytest.mark.parametrize("cast", ["to_bf16", "half", "double"])
@pytest.mark.parametrize("fill_cache_first", [False, True])
def test_module_cast_keeps_float32_frequencies_and_angles(cast, fill_cache_first):
    ref = pe.RotaryEmbedding(64)
    rot = pe.RotaryEmbedding(64)
    if fill_cache_first:
        rot.cos_sin(16)
    rot = {"to_bf16": lambda m: m.to(torch.bfloat16), "half": lambda m: m.half()}.get(
        cast, lambda m: m.double()
    )(rot)
    assert rot.inv_freq.dtype == torch.float32
    assert torch.equal(rot.inv_freq, ref.inv_freq)
    cos, sin = rot.cos_sin(8192)
    assert cos.dtype == torch.float32
    assert torch.equal(cos, ref.cos_sin(8192)[0]) and torch.equal(sin, ref.cos_sin(8192)[1])
    # the rotation of a bf16 q at position 8191 matches float32 maths within bf16 rounding
    q = torch.randn(1, 1, 8192, 64)
    out, _ = rot(q.to(torch.bfloat16), q.to(torch.bfloat16))
    exact, _ = ref(q.to(torch.bfloat16).double(), q.to(torch.bfloat16).double())
    assert (out[0, 0, -1].double() - exact[0, 0, -1]).abs().max() < 0.05


def test_cache_key_holds_device_and_dtype():
    rot = pe.RotaryEmbedding(8)
    rot.cos_sin(4)
    ((device, dtype),) = rot._cache.keys()
    assert device == torch.device("cpu") and dtype == torch.float32


# ----------------------------------------------------------------- bad input


def test_bool_positions_are_rejected():
    inv = pe.rope_inv_freq(8)[0]
    mask = torch.tensor([True, False, True])
    with pytest.raises(TypeError, match="positions must hold numbers, got a bool tensor"):
        pe.rope_cos_sin(mask, inv)
    q = torch.randn(1, 1, 3, 8)
    with pytest.raises(TypeError, match="bool tensor"):
        pe.RotaryEmbedding(8)(q, q, positions=mask)
    with pytest.raises(TypeError, match="bool tensor"):
        pe.sinusoidal_encoding(mask, 8)


@pytest.mark.parametrize("base", [1.0, 0.5, 1e-3])
def test_base_at_most_one_is_rejected(base):
    with pytest.raises(ValueError, match="base must be a finite number > 1"):
        pe.rope_inv_freq(8, base=base)
    with pytest.raises(ValueError, match="base must be a finite number > 1"):
        pe.RotaryEmbedding(8, base=base)
    with pytest.raises(ValueError, match="base must be a finite number > 1"):
        pe.sinusoidal_encoding(4, 8, base=base)


# ------------------------------------------------------ (batch, seq, heads, dim)


def test_seq_dim_minus_3_equals_the_transposed_default_layout():
    torch.manual_seed(0)
    q = torch.randn(2, 5, 4, 16)  # (batch, seq, heads, head_dim)
    k = torch.randn(2, 5, 2, 16)
    ref = pe.RotaryEmbedding(16)
    bshd = pe.RotaryEmbedding(16, seq_dim=-3)
    oq, ok = bshd(q, k, offset=3)
    rq, rk = ref(q.transpose(1, 2), k.transpose(1, 2), offset=3)
    assert_close(oq, rq.transpose(1, 2))
    assert_close(ok, rk.transpose(1, 2))
    # per-sequence positions and a single tensor
    pos = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]])
    assert_close(
        bshd(q, k, positions=pos)[0],
        ref(q.transpose(1, 2), k.transpose(1, 2), pos)[0].transpose(1, 2),
    )
    assert_close(bshd.rotate(q, offset=3), oq)
    # the functional form
    cos, sin = pe.rope_cos_sin(5, pe.rope_inv_freq(16)[0])
    assert_close(
        pe.apply_rope(q, cos, sin, seq_dim=-3),
        pe.apply_rope(q.transpose(1, 2), cos, sin).transpose(1, 2),
    )
    assert_close(pe.apply_rope_fast(q, cos, sin, seq_dim=1), pe.apply_rope(q, cos, sin, seq_dim=-3))


def test_wrong_layout_is_detected_where_possible():
    q = torch.randn(1, 6, 4, 16)  # (batch, seq=6, heads=4, dim) given to a (b, h, s, d) module
    k = torch.randn(1, 6, 2, 16)  # fewer kv heads: dim 2 disagrees between q and k
    with pytest.raises(ValueError, match="seq_dim=-3"):
        pe.RotaryEmbedding(16)(q, k)
    with pytest.raises(ValueError, match=r"positions must be .* seq = 4 \(the size of dim -2\)"):
        pe.RotaryEmbedding(16)(q, q, positions=torch.arange(6))
    cos, sin = pe.rope_cos_sin(6, pe.rope_inv_freq(16)[0])
    with pytest.raises(ValueError, match="pass seq_dim=-3"):
        pe.apply_rope(q, cos, sin)
    with pytest.raises(ValueError, match="seq_dim must be -2"):
        pe.apply_rope(q, cos, sin, seq_dim=0)
    with pytest.raises(ValueError, match="seq_dim must be one of"):
        pe.RotaryEmbedding(16, seq_dim=1)


# ------------------------------------------------------ dynamic scaling, per step


def test_dynamic_decoding_computes_only_the_new_positions(monkeypatch):
    dyn = {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 16}
    rot = pe.RotaryEmbedding(8, scaling=dyn)
    rows = []
    real = rope_module.rope_cos_sin

    def spy(positions, inv_freq, **kw):
        cos, sin = real(positions, inv_freq, **kw)
        rows.append(cos.shape[0])
        return cos, sin

    monkeypatch.setattr(rope_module, "rope_cos_sin", spy)
    q = torch.randn(1, 1, 1, 8)
    for step in range(40, 44):  # decoding far past L0 = 16
        out, _ = rot(q, q, offset=step)
        # the frequencies of the current length offset + 1, at position offset only
        inv, _ = pe.rope_inv_freq(8, scaling=dyn, seq_len=step + 1)
        cos, sin = real(torch.tensor([step]), inv)
        assert_close(out, pe.apply_rope(q, cos, sin))
    assert rows == [1, 1, 1, 1]


def test_dynamic_full_and_incremental_passes_differ_from_position_1():
    """As the docstring says (and as in Hugging Face): not only past L0."""
    dyn = {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 4}
    rot = pe.RotaryEmbedding(8, scaling=dyn)
    k = torch.randn(1, 1, 8, 8)
    full, _ = rot(k, k)
    steps = torch.cat(
        [rot(k[:, :, t : t + 1], k[:, :, t : t + 1], offset=t)[0] for t in range(8)], 2
    )
    diff = (full - steps).abs().amax(dim=(0, 1, 3))
    # position 0 has angle 0 and the last step sees the full length: equal; all others differ
    assert diff[0] == 0 and diff[-1] < 1e-6 and (diff[1:-1] > 1e-3).all(), diff


# ------------------------------------------------------------- torch.compile


def test_compile_fullgraph_sinusoidal_and_rotary_positions():
    torch._dynamo.reset()
    pos = torch.arange(6, dtype=torch.float32)
    sin_fn = torch.compile(lambda p: pe.sinusoidal_encoding(p, 8), fullgraph=True, backend="eager")
    assert_close(sin_fn(pos), pe.sinusoidal_encoding(pos, 8))
    rot = pe.RotaryEmbedding(8)
    q = torch.randn(1, 2, 6, 8)
    rot_fn = torch.compile(lambda q, p: rot(q, q, positions=p), fullgraph=True, backend="eager")
    assert_close(rot_fn(q, pos)[0], rot(q, q, positions=pos)[0])
    # the eager checks stay
    with pytest.raises(ValueError, match="finite"):
        pe.sinusoidal_encoding(torch.tensor([0.0, float("nan")]), 8)
