"""Tests of posenc_lib.multidim: 2-D sinusoidal tables, table interpolation, axial RoPE,
and Qwen2-VL multimodal RoPE (M-RoPE)."""

import math

import numpy as np
import pytest
import torch
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import posenc_lib as pe
from posenc_lib import multidim

# --------------------------------------------------------------------------- patches


def test_all_names_exported():
    for name in multidim.__all__:
        assert getattr(pe, name) is getattr(multidim, name), name


def test_patch_positions_hand_case(device):
    expected = torch.tensor([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]], device=device)
    assert torch.equal(pe.patch_positions(2, 3, device=device), expected)


@given(st.integers(1, 9), st.integers(1, 9))
@settings(max_examples=30, deadline=None)
def test_patch_positions_raster_order(h, w):
    pos = pe.patch_positions(h, w)
    n = torch.arange(h * w)
    assert torch.equal(pos[:, 0], n // w)
    assert torch.equal(pos[:, 1], n % w)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, 3), ValueError, "height must be >= 1"),
        ((3, 0), ValueError, "width must be >= 1"),
        ((2.0, 3), TypeError, "height must be an int"),
    ],
)
def test_patch_positions_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        pe.patch_positions(*args)


# --------------------------------------------------------------------- 2-D sinusoidal


def _mae_2d_sincos(h, w, d, base=10_000.0):
    """MAE's get_2d_sincos_pos_embed, written independently with numpy (column half first,
    each half 'concat' layout: all sines then all cosines)."""

    def one_d(dim, pos):
        omega = 1.0 / base ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid_w, grid_h = np.meshgrid(np.arange(w), np.arange(h))  # both (h, w)
    return np.concatenate([one_d(d // 2, grid_w), one_d(d // 2, grid_h)], axis=1)


@pytest.mark.parametrize(("h", "w", "d"), [(3, 5, 8), (14, 14, 64), (1, 7, 12)])
def test_sinusoidal_2d_matches_mae_formula(h, w, d):
    ours = pe.sinusoidal_encoding_2d(h, w, d, layout="concat", dtype=torch.float64)
    mae = torch.from_numpy(_mae_2d_sincos(h, w, d))
    half = d // 2
    swapped = torch.cat((mae[:, half:], mae[:, :half]), dim=1)  # row half first, as ours
    assert_close(ours, swapped, atol=1e-12, rtol=0)


def test_sinusoidal_2d_hand_case():
    # d = 4: one frequency (omega = 1) per half, interleaved: [sin y, cos y, sin x, cos x].
    table = pe.sinusoidal_encoding_2d(2, 2, 4, dtype=torch.float64)
    y = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    x = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    expected = torch.stack((y.sin(), y.cos(), x.sin(), x.cos()), dim=1)
    assert_close(table, expected, atol=1e-12, rtol=0)


def test_sinusoidal_2d_is_concat_of_1d(device, dtype):
    h, w, d = 4, 6, 16
    table = pe.sinusoidal_encoding_2d(h, w, d, dtype=dtype, device=device)
    assert table.shape == (h * w, d) and table.dtype == dtype and table.device.type == device.type
    pos = pe.patch_positions(h, w, device=device)
    rows = pe.sinusoidal_encoding(pos[:, 0].float(), d // 2, dtype=dtype, device=device)
    cols = pe.sinusoidal_encoding(pos[:, 1].float(), d // 2, dtype=dtype, device=device)
    assert torch.equal(table, torch.cat((rows, cols), dim=1))


@given(
    st.integers(0, 9),
    st.integers(0, 9),
    st.integers(-4, 4),
    st.integers(-4, 4),
    st.integers(0, 9),
    st.integers(0, 9),
)
@settings(max_examples=40, deadline=None)
def test_sinusoidal_2d_dot_depends_on_offset_only(y, x, dy, dx, y2, x2):
    # <P(y, x), P(y + dy, x + dx)> = sum_i cos(dy w_i) + sum_i cos(dx w_i) for any (y, x).
    h = w = 14
    d = 32
    table = pe.sinusoidal_encoding_2d(h, w, d, dtype=torch.float64)

    def dot(a, b, c, e):
        if not (0 <= c < h and 0 <= e < w):
            return None
        return float(table[a * w + b] @ table[c * w + e])

    s1, s2 = dot(y, x, y + dy, x + dx), dot(y2, x2, y2 + dy, x2 + dx)
    omega = 10_000.0 ** (-torch.arange(0, d // 2, 2, dtype=torch.float64) / (d // 2))
    closed = float(torch.cos(dy * omega).sum() + torch.cos(dx * omega).sum())
    for s in (s1, s2):
        if s is not None:
            assert math.isclose(s, closed, abs_tol=1e-9)


@pytest.mark.parametrize(("d", "match"), [(6, "divisible by 4"), (2, "d_model must be >= 4")])
def test_sinusoidal_2d_bad_d_model(d, match):
    with pytest.raises(ValueError, match=match):
        pe.sinusoidal_encoding_2d(3, 3, d)


def test_sinusoidal_2d_bad_layout():
    with pytest.raises(ValueError, match="layout must be one of"):
        pe.sinusoidal_encoding_2d(3, 3, 8, layout="rows")


# ----------------------------------------------------------------------- interpolation


@pytest.mark.parametrize("mode", ["bicubic", "bilinear", "nearest"])
def test_interpolate_same_size_is_identity(mode):
    table = torch.randn(1 + 5 * 7, 12)
    out = pe.interpolate_position_table(table, (5, 7), (5, 7), mode=mode, num_prefix_tokens=1)
    assert_close(out, table, atol=1e-5, rtol=0)


@given(
    st.integers(2, 8),
    st.integers(2, 8),
    st.integers(1, 3),
    st.sampled_from(["bicubic", "bilinear"]),
)
@settings(max_examples=25, deadline=None)
def test_interpolate_reproduces_table_on_the_old_grid(h, w, k, mode):
    # align_corners=True, new = k (old - 1) + 1: every k-th new point is an old point.
    gen = torch.Generator().manual_seed(h * 100 + w * 10 + k)
    table = torch.randn(2 + h * w, 6, generator=gen, dtype=torch.float64)
    new_hw = (k * (h - 1) + 1, k * (w - 1) + 1)
    out = pe.interpolate_position_table(
        table, (h, w), new_hw, mode=mode, num_prefix_tokens=2, align_corners=True
    )
    assert out.shape == (2 + new_hw[0] * new_hw[1], 6)
    assert torch.equal(out[:2], table[:2])  # prefix (class/register tokens) untouched
    grid = out[2:].reshape(*new_hw, 6)[::k, ::k].reshape(h * w, 6)
    assert_close(grid, table[2:], atol=1e-5, rtol=0)


def test_interpolate_bilinear_is_exact_for_a_linear_table():
    # A table linear in (row, col) is reproduced exactly at fractional positions by
    # bilinear interpolation; align_corners=False samples old coordinate
    # (j + 0.5) * old / new - 0.5, clamped to [0, old - 1].
    h, w, nh, nw = 4, 5, 7, 9
    pos = pe.patch_positions(h, w).double()
    table = torch.stack((pos[:, 0], pos[:, 1], 2 * pos[:, 0] - 3 * pos[:, 1] + 1), dim=1)
    out = pe.interpolate_position_table(table, (h, w), (nh, nw), mode="bilinear")
    ry = ((torch.arange(nh, dtype=torch.float64) + 0.5) * h / nh - 0.5).clamp(0, h - 1)
    rx = ((torch.arange(nw, dtype=torch.float64) + 0.5) * w / nw - 0.5).clamp(0, w - 1)
    yy, xx = torch.meshgrid(ry, rx, indexing="ij")
    expected = torch.stack((yy, xx, 2 * yy - 3 * xx + 1), dim=-1).reshape(nh * nw, 3)
    assert_close(out, expected, atol=1e-5, rtol=0)


def test_interpolate_keeps_dtype_and_device(device, dtype):
    table = torch.randn(1 + 9, 8, device=device).to(dtype)
    out = pe.interpolate_position_table(table, (3, 3), (5, 4), num_prefix_tokens=1)
    assert out.dtype == dtype and out.device.type == device.type and out.shape == (21, 8)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"old_hw": (3, 4)}, ValueError, "table must have num_prefix_tokens"),
        ({"new_hw": (0, 4)}, ValueError, r"new_hw\[0\] must be >= 1"),
        ({"new_hw": 4}, TypeError, "new_hw must be a pair"),
        ({"mode": "area"}, ValueError, "mode must be one of"),
        ({"num_prefix_tokens": -1}, ValueError, "num_prefix_tokens must be >= 0"),
    ],
)
def test_interpolate_bad_input(kwargs, error, match):
    args = {"table": torch.randn(9, 4), "old_hw": (3, 3), "new_hw": (4, 4)} | kwargs
    with pytest.raises(error, match=match):
        pe.interpolate_position_table(
            args.pop("table"), args.pop("old_hw"), args.pop("new_hw"), **args
        )


def test_interpolate_rejects_integer_table():
    with pytest.raises(TypeError, match="table must be a floating-point tensor"):
        pe.interpolate_position_table(torch.zeros(4, 2, dtype=torch.long), (2, 2), (3, 3))


# ------------------------------------------------------------------------- axial RoPE


def test_axial_rope_matches_complex_formula():
    # Heo et al. (2024) axial RoPE written with complex numbers, pair by pair.
    h, w, d, base = 3, 4, 16, 100.0
    cos, sin = pe.axial_rope_cos_sin(h, w, d, base=base, dtype=torch.float64)
    assert cos.shape == sin.shape == (h * w, d // 2)
    freqs = [base ** (-4 * k / d) for k in range(d // 4)]
    for n in range(h * w):
        y, x = divmod(n, w)
        angles = [y * f for f in freqs] + [x * f for f in freqs]
        z = torch.tensor([complex(math.cos(a), math.sin(a)) for a in angles])
        # angles are computed in float32 (library convention), hence the tolerance
        assert_close(cos[n], z.real.double(), atol=1e-6, rtol=0)
        assert_close(sin[n], z.imag.double(), atol=1e-6, rtol=0)


def _score(q, k, pos_q, pos_k, head_dim, base=100.0):
    cq, sq = pe.rope_cos_sin_2d(pos_q, head_dim, base=base, dtype=torch.float64)
    ck, sk = pe.rope_cos_sin_2d(pos_k, head_dim, base=base, dtype=torch.float64)
    return (pe.apply_rope(q, cq, sq) * pe.apply_rope(k, ck, sk)).sum(-1)


@given(
    st.lists(st.floats(-20, 20, allow_nan=False), min_size=4, max_size=4),
    st.floats(-30, 30, allow_nan=False),
    st.floats(-30, 30, allow_nan=False),
    st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_axial_rope_score_depends_on_offset_only(coords, sy, sx, seed):
    head_dim = 16
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, head_dim, generator=gen, dtype=torch.float64)
    k = torch.randn(1, head_dim, generator=gen, dtype=torch.float64)
    yq, xq, yk, xk = coords
    pos_q = torch.tensor([[yq, xq]], dtype=torch.float64)
    pos_k = torch.tensor([[yk, xk]], dtype=torch.float64)
    shift = torch.tensor([[sy, sx]], dtype=torch.float64)
    s1 = _score(q, k, pos_q, pos_k, head_dim)
    s2 = _score(q, k, pos_q + shift, pos_k + shift, head_dim)
    assert_close(s1, s2, atol=1e-4, rtol=1e-5)  # float32 angles of positions up to 50


def test_axial_rope_rows_and_columns_use_separate_pairs():
    # 2 x 2 grid, head_dim 8: pairs 0-1 follow the row, pairs 2-3 the column.
    cos, _ = pe.axial_rope_cos_sin(2, 2, 8)
    origin, down, right = cos[0], cos[2], cos[1]  # (0, 0), (1, 0), (0, 1)
    assert torch.equal(origin[2:], down[2:]) and not torch.equal(origin[:2], down[:2])
    assert torch.equal(origin[:2], right[:2]) and not torch.equal(origin[2:], right[2:])


def test_axial_rope_dtype_device(device, dtype):
    cos, sin = pe.axial_rope_cos_sin(3, 3, 8, dtype=dtype, device=device)
    assert cos.dtype == sin.dtype == dtype and cos.device.type == device.type


@pytest.mark.parametrize(
    ("pos", "head_dim", "error", "match"),
    [
        (torch.zeros(4, 3), 8, ValueError, r"positions_2d must have shape \(n, 2\)"),
        (torch.zeros(4), 8, ValueError, "positions_2d must have 2 dimensions"),
        ([[0, 0]], 8, TypeError, "positions_2d must be a torch.Tensor"),
        (torch.tensor([[0.0, float("nan")]]), 8, ValueError, "positions_2d must be finite"),
        (torch.zeros(4, 2), 6, ValueError, "head_dim must be divisible by 4"),
        (torch.zeros(4, 2), 2, ValueError, "head_dim must be >= 4"),
    ],
)
def test_rope_2d_bad_input(pos, head_dim, error, match):
    with pytest.raises(error, match=match):
        pe.rope_cos_sin_2d(pos, head_dim)


# ---------------------------------------------------------------------------- M-RoPE


def test_mrope_position_ids_hand_case():
    ids = pe.mrope_position_ids([2, (1, 2, 3), 1])
    expected = torch.tensor(
        [
            [0, 1, 2, 2, 2, 2, 2, 2, 5],
            [0, 1, 2, 2, 2, 3, 3, 3, 5],
            [0, 1, 2, 3, 4, 2, 3, 4, 5],
        ]
    )
    assert torch.equal(ids, expected)


def test_mrope_position_ids_video_then_text():
    # A video with T = 3 frames of 1 x 2 tokens: time ids 0, 1, 2; next text at 0 + 3.
    ids = pe.mrope_position_ids([(3, 1, 2), 2])
    assert ids[:, -2:].tolist() == [[3, 4]] * 3
    assert ids[0, :6].tolist() == [0, 0, 1, 1, 2, 2]


@given(
    st.lists(
        st.one_of(
            st.integers(1, 5), st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))
        ),
        min_size=1,
        max_size=5,
    )
)
@settings(max_examples=40, deadline=None)
def test_mrope_position_ids_properties(segments):
    ids = pe.mrope_position_ids(segments)
    lengths = [s if isinstance(s, int) else s[0] * s[1] * s[2] for s in segments]
    assert ids.shape == (3, sum(lengths))
    start = 0
    offset = 0
    for seg, length in zip(segments, lengths, strict=True):
        part = ids[:, offset : offset + length]
        assert int(part.min()) == start  # each segment begins right after the previous max
        if isinstance(seg, int):
            assert torch.equal(part[0], part[1]) and torch.equal(part[1], part[2])
        start = int(part.max()) + 1
        offset += length


@pytest.mark.parametrize(
    ("segments", "error", "match"),
    [
        ([], TypeError, "segments must be a non-empty sequence"),
        ("abc", TypeError, "segments must be a non-empty sequence"),
        ([0], ValueError, r"segments\[0\] must be >= 1"),
        ([3, (1, 0, 2)], ValueError, r"segments\[1\]\[1\] must be >= 1"),
        ([3, (1, 2)], TypeError, r"segments\[1\] must be an int >= 1"),
        ([True], TypeError, r"segments\[0\] must be an int >= 1"),
    ],
)
def test_mrope_position_ids_bad_input(segments, error, match):
    with pytest.raises(error, match=match):
        pe.mrope_position_ids(segments)


def test_mrope_equal_ids_reduce_to_1d_rope(device, dtype):
    # Text tokens (t = h = w) get exactly 1-D RoPE: what Qwen2-VL relies on.
    inv_freq, _ = pe.rope_inv_freq(128)
    inv_freq = inv_freq.to(device)
    pos = torch.arange(40, device=device)
    cos3, sin3 = pe.mrope_cos_sin(
        pos.expand(3, -1), inv_freq, pe.QWEN2VL_MROPE_SECTIONS, dtype=dtype
    )
    cos1, sin1 = pe.rope_cos_sin(pos, inv_freq, dtype=dtype)
    assert cos3.shape == (40, 64) and cos3.dtype == dtype
    assert torch.equal(cos3, cos1) and torch.equal(sin3, sin1)


def test_mrope_sections_pick_their_axis():
    inv_freq, _ = pe.rope_inv_freq(16)  # 8 pairs
    ids = torch.tensor([[5.0], [7.0], [11.0]])
    cos, sin = pe.mrope_cos_sin(ids, inv_freq, (2, 3, 3))
    axis = [0, 0, 1, 1, 1, 2, 2, 2]
    expected = torch.tensor(
        [float(ids[a, 0]) * float(f) for a, f in zip(axis, inv_freq, strict=True)]
    )
    assert_close(cos[0], expected.cos())
    assert_close(sin[0], expected.sin())


def test_mrope_empty_section_and_scaling():
    inv_freq, _ = pe.rope_inv_freq(8)  # 4 pairs
    ids = pe.mrope_position_ids([2, (1, 2, 2)])
    cos, sin = pe.mrope_cos_sin(ids, inv_freq, (0, 2, 2), attention_scaling=0.5)
    c_h, s_h = pe.rope_cos_sin(ids[1], inv_freq[:2])
    assert_close(cos[:, :2], 0.5 * c_h)
    assert_close(sin[:, :2], 0.5 * s_h)


@given(st.lists(st.integers(-50, 50), min_size=6, max_size=6), st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_mrope_score_depends_on_3d_offset_only(coords, seed):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 32, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 32, generator=gen, dtype=torch.float64)
    inv_freq, _ = pe.rope_inv_freq(32)
    inv_freq = inv_freq.double()
    a, b = torch.tensor(coords[:3])[:, None], torch.tensor(coords[3:])[:, None]

    def score(shift):
        cq, sq = pe.mrope_cos_sin(a + shift, inv_freq, (4, 6, 6), dtype=torch.float64)
        ck, sk = pe.mrope_cos_sin(b + shift, inv_freq, (4, 6, 6), dtype=torch.float64)
        return (pe.apply_rope(q, cq, sq) * pe.apply_rope(k, ck, sk)).sum()

    assert_close(score(0), score(torch.tensor([[3], [-7], [11]])), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(
    ("ids", "sections", "error", "match"),
    [
        (torch.zeros(2, 5), (2, 1, 1), ValueError, r"position_ids must have shape \(3, seq\)"),
        (torch.zeros(3, 5), (2, 1, 2), ValueError, "sections must sum to"),
        (torch.zeros(3, 5), (2, 2), TypeError, "sections must be three ints"),
        (torch.zeros(3, 5), (2, -1, 3), ValueError, r"sections\[1\] must be >= 0"),
    ],
)
def test_mrope_cos_sin_bad_input(ids, sections, error, match):
    inv_freq, _ = pe.rope_inv_freq(8)
    with pytest.raises(error, match=match):
        pe.mrope_cos_sin(ids, inv_freq, sections)


# ------------------------------------------------- against Hugging Face Qwen2-VL code


def _hf_qwen2vl():
    pytest.importorskip("transformers")
    return pytest.importorskip("transformers.models.qwen2_vl.modeling_qwen2_vl")


def test_mrope_cos_sin_matches_transformers_qwen2vl():
    hf = _hf_qwen2vl()
    from transformers import Qwen2VLTextConfig

    head_dim, sections = 32, [4, 6, 6]
    config = Qwen2VLTextConfig(
        hidden_size=2 * head_dim,
        num_attention_heads=2,
        num_key_value_heads=2,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000.0, "mrope_section": sections},
    )
    rotary = hf.Qwen2VLRotaryEmbedding(config)
    ids = pe.mrope_position_ids([3, (1, 3, 4), (2, 2, 3), 2])
    hf_cos, hf_sin = rotary(torch.zeros(1), ids[:, None, :])  # (1, seq, head_dim)
    inv_freq, _ = pe.rope_inv_freq(head_dim, base=10_000.0)
    cos, sin = pe.mrope_cos_sin(ids, inv_freq, sections)
    # Hugging Face repeats the n_freq angles twice ("half" layout: cat((freq, freq))).
    assert_close(hf_cos[0], torch.cat((cos, cos), dim=-1))
    assert_close(hf_sin[0], torch.cat((sin, sin), dim=-1))
    # And the rotation itself: HF's apply_rotary_pos_emb equals pe.apply_rope.
    q = torch.randn(1, 2, ids.shape[1], head_dim)
    hf_q, _ = hf.apply_rotary_pos_emb(q, q, hf_cos, hf_sin)
    assert_close(hf_q, pe.apply_rope(q, cos, sin), atol=1e-5, rtol=1e-5)


def test_mrope_position_ids_match_transformers_get_rope_index():
    hf = _hf_qwen2vl()
    from types import MethodType, SimpleNamespace

    merge = 2
    fake = SimpleNamespace(
        config=SimpleNamespace(vision_config=SimpleNamespace(spatial_merge_size=merge))
    )
    fake.get_vision_position_ids = MethodType(hf.Qwen2VLModel.get_vision_position_ids, fake)
    # text 3, image 8 x 12 patches (4 x 6 tokens after the 2 x 2 merge), text 2,
    # image 6 x 4 patches (3 x 2 tokens), text 4.
    grids = [(1, 8, 12), (1, 6, 4)]
    segments = [3, (1, 4, 6), 2, (1, 3, 2), 4]
    types = []
    for seg in segments:
        types += [0] * seg if isinstance(seg, int) else [1] * (seg[0] * seg[1] * seg[2])
    token_types = torch.tensor([types])
    hf_ids, _ = hf.Qwen2VLModel.get_rope_index(
        fake, torch.zeros_like(token_types), token_types, image_grid_thw=torch.tensor(grids)
    )
    assert torch.equal(hf_ids[:, 0], pe.mrope_position_ids(segments))
