"""The RoPE exercise checkers accept right answers and name the mistake in wrong ones."""

import math

import pytest
import torch

import posenc_lib as pe
from posenc_lib.book.exercises import rope as ex

# ------------------------------------------------------------- reader implementations


def rope_loop(x, positions, *, base=10_000.0, layout="half", rotary_dim=None):
    """A right answer written as a scalar loop over positions and pairs (plain floats)."""
    out = x.clone()
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    n = r // 2
    for s, m in enumerate(positions.tolist()):
        for k in range(n):
            a_i, b_i = (k, k + n) if layout == "half" else (2 * k, 2 * k + 1)
            angle = m * base ** (-2 * k / r)
            c, si = math.cos(angle), math.sin(angle)
            a, b = x[..., s, a_i], x[..., s, b_i]
            out[..., s, a_i] = a * c - b * si
            out[..., s, b_i] = b * c + a * si
    return out


def rope_vectorised(
    x,
    positions,
    *,
    base=10_000.0,
    layout="half",
    rotary_dim=None,
    sign=1.0,
    exponent=2.0,
    freq_dim=None,
    tail="keep",
    use_positions=True,
):
    """A right answer with torch ops, or with one mistake switched on by an option."""
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if tail == "rotate":
        r = d
    fd = r if freq_dim is None else freq_dim
    n = r // 2
    inv = base ** (-exponent * torch.arange(n, dtype=torch.float32) / fd)
    pos = positions if use_positions else torch.arange(len(positions), dtype=torch.float32)
    ang = pos[:, None] * inv
    c, s = ang.cos(), sign * ang.sin()
    xr, rest = x[..., :r], x[..., r:]
    if layout == "half":
        a, b = xr[..., :n], xr[..., n:]
        rot = torch.cat((a * c - b * s, b * c + a * s), -1)
    else:
        a, b = xr[..., 0::2], xr[..., 1::2]
        rot = torch.stack((a * c - b * s, b * c + a * s), -1).flatten(-2)
    if tail == "zero":
        rest = torch.zeros_like(rest)
    return torch.cat((rot, rest), -1)


def rope_complex(x, positions, *, base=10_000.0):
    """A right interleaved answer in Meta's complex-number style."""
    d = x.shape[-1]
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float32) / d)
    rot = torch.polar(torch.ones(len(positions), d // 2), positions[:, None] * inv)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * rot).flatten(-2)


def rope_library(x, positions, *, base=10_000.0, layout="half", rotary_dim=None):
    r = x.shape[-1] if rotary_dim is None else rotary_dim
    inv, _ = pe.rope_inv_freq(r, base=base)
    cos, sin = pe.rope_cos_sin(positions, inv)
    return pe.apply_rope(x, cos, sin, layout=layout)


# ------------------------------------------------------------------------- reference


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("rotary_dim", [None, 4])
def test_reference_matches_library_and_loop(layout, rotary_dim):
    x = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    positions = torch.tensor([0.0, 1, 2, 9, 10, 300])
    ref = ex.reference_rope(x, positions, layout=layout, rotary_dim=rotary_dim, base=500.0)
    lib = rope_library(x, positions, layout=layout, rotary_dim=rotary_dim, base=500.0)
    loop = rope_loop(x, positions, layout=layout, rotary_dim=rotary_dim, base=500.0)
    torch.testing.assert_close(ref, lib, atol=1e-5, rtol=0)
    torch.testing.assert_close(ref, loop, atol=1e-10, rtol=0)


def test_reference_hand_value():
    """d = 2, position 1, x = (1, 0): the point turns by 1 radian to (cos 1, sin 1)."""
    x = torch.tensor([[1.0, 0.0]])
    out = ex.reference_rope(x, torch.tensor([1.0]))
    torch.testing.assert_close(
        out, torch.tensor([[math.cos(1.0), math.sin(1.0)]], dtype=torch.float64)
    )
    back = ex.reference_rope(x, torch.tensor([1.0]), direction=-1)
    torch.testing.assert_close(
        back, torch.tensor([[math.cos(1.0), -math.sin(1.0)]], dtype=torch.float64)
    )


# --------------------------------------------------------------------- right answers


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_right_answers_pass(layout):
    for fn in (rope_loop, rope_vectorised, rope_library):
        result = ex.check_apply_rope(
            lambda x, p, base=10_000.0, f=fn: f(x, p, base=base, layout=layout), layout=layout
        )
        assert result, result.message
        assert layout in result.message


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_right_partial_answers_pass(layout):
    for fn in (rope_loop, rope_vectorised, rope_library):

        def reader(x, p, base=10_000.0, rotary_dim=None, f=fn):
            return f(x, p, base=base, layout=layout, rotary_dim=rotary_dim)

        result = ex.check_apply_rope(reader, layout=layout, partial=True)
        assert result, result.message
        assert "partial" in result.message


def test_complex_form_is_interleaved():
    assert ex.check_apply_rope(rope_complex, layout="interleaved")
    result = ex.check_apply_rope(rope_complex, layout="half")
    assert not result and "layouts are mixed up" in result.message


def test_without_base_argument_runs_default_cases():
    result = ex.check_apply_rope(lambda x, positions: rope_vectorised(x, positions))
    assert result and "2 cases" in result.message


# --------------------------------------------------------------------- wrong answers


@pytest.mark.parametrize(
    ("options", "layout", "expected"),
    [
        ({"sign": -1.0}, "half", "direction is flipped"),
        ({"sign": -1.0}, "interleaved", "direction is flipped"),
        ({"layout": "interleaved"}, "half", "layouts are mixed up"),
        ({"layout": "half"}, "interleaved", "layouts are mixed up"),
        ({"exponent": 1.0}, "half", "base**(-i/d) instead of base**(-2i/d)"),
        ({"exponent": 4.0}, "half", "do not multiply it by 2 again"),
        ({"exponent": -2.0}, "interleaved", "wrong sign"),
        ({"use_positions": False}, "half", "positions argument is ignored"),
    ],
)
def test_full_mistakes_are_named(options, layout, expected):
    opts = {"layout": layout} | options

    def reader(x, positions, base=10_000.0):
        return rope_vectorised(x, positions, base=base, **opts)

    result = ex.check_apply_rope(reader, layout=layout)
    assert not result
    assert expected in result.message, result.message


def test_two_mistakes_are_both_named():
    def reader(x, positions, base=10_000.0):
        return rope_vectorised(x, positions, base=base, layout="interleaved", sign=-1.0)

    result = ex.check_apply_rope(reader, layout="half")
    assert not result
    assert "layouts are mixed up" in result.message and "direction" in result.message


def test_ignored_base_is_named():
    result = ex.check_apply_rope(lambda x, positions, base=10_000.0: rope_vectorised(x, positions))
    assert not result and "`base` argument is ignored" in result.message


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"tail": "rotate"}, "the whole head is rotated"),
        ({"tail": "zero"}, "set to zero"),
        ({"freq_dim": "head"}, "use head_dim in the exponent"),
        ({"sign": -1.0}, "direction is flipped"),
    ],
)
def test_partial_mistakes_are_named(options, expected):
    def reader(x, positions, base=10_000.0, rotary_dim=None):
        opts = dict(options)
        if opts.get("freq_dim") == "head":
            opts["freq_dim"] = x.shape[-1]
        return rope_vectorised(x, positions, base=base, rotary_dim=rotary_dim, **opts)

    result = ex.check_apply_rope(reader, partial=True)
    assert not result
    assert expected in result.message, result.message


def test_partial_needs_rotary_dim_argument():
    result = ex.check_apply_rope(lambda x, positions: x, partial=True)
    assert not result and "rotary_dim" in result.message


def test_generic_failures():
    crash = ex.check_apply_rope(lambda x, positions: 1 / 0)
    assert not crash and "ZeroDivisionError" in crash.message
    shape = ex.check_apply_rope(lambda x, positions: x[..., :2])
    assert not shape and "expected x's shape" in shape.message
    cplx = ex.check_apply_rope(lambda x, positions: torch.zeros(x.shape, dtype=torch.complex64))
    assert not cplx and "complex" in cplx.message
    nan = ex.check_apply_rope(lambda x, positions: x * float("nan"))
    assert not nan and "nan" in nan.message
    scaled = ex.check_apply_rope(lambda x, positions: 2 * rope_vectorised(x, positions))
    assert not scaled and "not a rotation" in scaled.message
    identity = ex.check_apply_rope(lambda x, positions: x.clone())
    assert not identity and "the angles are not" in identity.message


def test_position_zero_hint():
    def reader(x, positions):  # every angle is off by one position
        return rope_vectorised(x, positions + 1)

    result = ex.check_apply_rope(reader)
    assert not result and "position 0" in result.message


def test_bad_layout_argument():
    with pytest.raises(ValueError, match="layout must be one of"):
        ex.check_apply_rope(rope_vectorised, layout="pairs")


# ---------------------------------------------------------------- layout conversion


def convert_right(w, num_heads):
    head_dim = w.shape[0] // num_heads
    perm = pe.rope_permutation(head_dim)
    return w.reshape(num_heads, head_dim, -1)[:, perm].reshape(w.shape)


def convert_loop(w, num_heads):
    head_dim = w.shape[0] // num_heads
    rows = []
    for h in range(num_heads):
        block = w[h * head_dim : (h + 1) * head_dim]
        rows += [block[0::2], block[1::2]]
    return torch.cat(rows)


def test_conversion_right_answers_pass():
    for fn in (convert_right, convert_loop):
        result = ex.check_layout_conversion(fn)
        assert result, result.message


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda w, h: w, "unchanged"),
        (
            lambda w, h: w.reshape(h, w.shape[0] // h, -1)[
                :, pe.rope_permutation(w.shape[0] // h, inverse=True)
            ].reshape(w.shape),
            "inverse permutation",
        ),
        (lambda w, h: w[pe.rope_permutation(w.shape[0])], "within each head"),
        (lambda w, h: w[:, pe.rope_permutation(w.shape[1])], "columns are permuted"),
        (
            lambda w, h: w[torch.randperm(w.shape[0], generator=torch.Generator().manual_seed(0))],
            "do not give the scores",
        ),
        (lambda w, h: w.T, "expected W's shape"),
    ],
)
def test_conversion_mistakes_are_named(fn, expected):
    result = ex.check_layout_conversion(fn)
    assert not result
    assert expected in result.message, result.message


# ------------------------------------ three look-alike mistakes, three diagnoses


def rope_hf_tables_interleaved(x, positions, base=10_000.0):
    """Interleaved pairs with Hugging Face's cat(angles, angles) tables."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    table = torch.cat((positions[:, None] * theta,) * 2, dim=-1)
    rot = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    return x * table.cos() + rot * table.sin()


def rope_in_place(x, positions, base=10_000.0):
    """Writes the rotated first features into x, then reads them back as 'a'."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    c, s = (positions[:, None] * theta).cos(), (positions[:, None] * theta).sin()
    a, b = x[..., 0::2], x[..., 1::2]  # views of x
    x[..., 0::2] = a * c - b * s
    x[..., 1::2] = b * c + a * s  # a is already rotated here
    return x


def rope_fp16(x, positions, base=10_000.0):
    """The right formula, computed in float16."""
    out = rope_vectorised(x.half(), positions.half(), base=base, layout="interleaved")
    return out.float()


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (rope_hf_tables_interleaved, "Hugging Face style"),
        (rope_in_place, "in-place aliasing"),
        (rope_fp16, "low precision"),
    ],
)
def test_look_alike_mistakes_get_their_own_diagnosis(fn, expected):
    result = ex.check_apply_rope(fn, layout="interleaved")
    assert not result
    assert expected in result.message
    others = {"Hugging Face style", "in-place aliasing", "low precision"} - {expected}
    assert not any(o in result.message for o in others)


def test_in_place_on_a_copy_passes():
    result = ex.check_apply_rope(lambda x, p, base=10_000.0: rope_in_place(x.clone(), p, base))
    assert not result  # still aliased, on the copy
    fixed = ex.check_apply_rope(
        lambda x, p, base=10_000.0: rope_vectorised(x, p, base=base, layout="interleaved"),
        layout="interleaved",
    )
    assert fixed


# ------------------------------------------------------------ incremental decoding


def decode_with_cache(
    q,
    k,
    v,
    base=10_000.0,
    *,
    rotate_q=True,
    rotate_k=True,
    fixed_position=None,
    causal=True,
    scale=True,
):
    """Token-by-token decoding with a cache of rotated keys; options inject mistakes."""
    d = q.shape[-1]
    inv, _ = pe.rope_inv_freq(d, base=base)
    keys, values, outs = [], [], []
    seq = q.shape[-2]
    for t in range(seq):
        pos = t if fixed_position is None else fixed_position
        cos, sin = pe.rope_cos_sin(torch.tensor([float(pos)]), inv)
        qt, kt = q[..., t : t + 1, :], k[..., t : t + 1, :]
        if rotate_q:
            qt = pe.apply_rope(qt, cos, sin)
        if rotate_k:
            kt = pe.apply_rope(kt, cos, sin)
        keys.append(kt)
        values.append(v[..., t : t + 1, :])
        kc, vc = torch.cat(keys, -2), torch.cat(values, -2)
        if not causal:  # a buggy cache that already holds every token
            kc = pe.apply_rope(k, *pe.rope_cos_sin(seq, inv)) if rotate_k else k
            vc = v
        logits = qt @ kc.transpose(-1, -2)
        if scale:
            logits = logits / d**0.5
        outs.append(logits.softmax(-1) @ vc)
    return torch.cat(outs, -2)


def test_decode_right_answer_passes():
    assert ex.check_rope_decode(decode_with_cache)


def test_decode_matches_library_layer():
    torch.manual_seed(0)
    layer = pe.MultiHeadAttention(16, 2, position="rope", causal=True).eval()
    x = torch.randn(1, 7, 16)
    with torch.no_grad():
        q, k, v = layer.qkv(x).view(1, 7, 3, 2, 8).permute(2, 0, 3, 1, 4)
        y = ex.reference_rope_decode(q, k, v).float()
        want = layer(x)
    torch.testing.assert_close(
        layer.out(y.transpose(1, 2).reshape(1, 7, 16)), want, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"fixed_position": 0}, "no position at all"),
        ({"rotate_q": False}, "query is not rotated"),
        ({"rotate_k": False}, "keys are not rotated"),
        ({"causal": False}, "sees keys after it"),
        ({"scale": False}, "sqrt(head_dim)"),
    ],
)
def test_decode_mistakes_are_named(options, expected):
    result = ex.check_rope_decode(
        lambda q, k, v, base=10_000.0: decode_with_cache(q, k, v, base, **options)
    )
    assert not result
    assert expected in result.message


def test_decode_errors_are_reported():
    def boom(q, k, v):
        raise RuntimeError("no cache yet")

    result = ex.check_rope_decode(boom)
    assert not result and "no cache yet" in result.message


# ------------------------------------------------------------- axial 2-D RoPE scores


def _axial(q, k, dy, dx):
    c0, s0 = pe.rope_cos_sin_2d(torch.tensor([[0.0, 0.0]]), q.shape[-1])
    c1, s1 = pe.rope_cos_sin_2d(torch.tensor([[float(dy), float(dx)]]), q.shape[-1])
    return float(pe.apply_rope(q, c0, s0) @ pe.apply_rope(k, c1, s1).T)


def _qk():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 1, 16, generator=gen).unbind()


def test_diagonal_right_answers_pass_and_diagonals_differ():
    q, k = _qk()
    s = {(a, b): _axial(q, k, a, b) for a in (-1, 1) for b in (-1, 1)}
    c = s[1, 1] + s[-1, -1] - s[1, -1] - s[-1, 1]
    assert abs(s[1, 1] - s[1, -1]) > 0.5 and abs(c) < 1e-4
    assert ex.check_diagonal_answers(q, k, s_diag=s[1, 1], s_anti=s[1, -1], contrast=c)


@pytest.mark.parametrize("mistake", ["swapped", "sign", "ones", "contrast", "other"])
def test_diagonal_mistakes_are_named(mistake):
    q, k = _qk()
    s = {(a, b): _axial(q, k, a, b) for a in (-1, 1) for b in (-1, 1)}
    ones = torch.ones(1, 16)
    answers = {
        "swapped": (s[1, -1], s[1, 1], 0.0, "swapped"),
        "sign": (s[-1, -1], s[-1, 1], 0.0, "key's position minus"),
        "ones": (_axial(ones, ones, 1, 1), _axial(ones, ones, 1, -1), 0.0, "q = k = ones"),
        "contrast": (s[1, 1], s[1, -1], 2.0, "must vanish"),
        "other": (s[1, 1] + 1.0, s[1, -1], 0.0, "you report"),
    }[mistake]
    result = ex.check_diagonal_answers(
        q, k, s_diag=answers[0], s_anti=answers[1], contrast=answers[2]
    )
    assert not result and answers[3] in result.message


# ------------------------------------------------------------- bfloat16 answers


def test_bf16_answers():
    assert ex.check_bf16_answers(256, 512, 99_840)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ((128, 512, 99_840), "leading bit is implicit"),
        ((255, 512, 99_840), "257 is the first integer lost"),
        ((257, 512, 99_840), "needs 9 significant bits"),
        ((256, 256, 99_840), "not 2^(15-7)"),
        ((256, 1024, 99_840), "7 bits after the"),
        ((256, 512, 100_000), "cannot hold it"),
        ((256, 512, 100_352), "nearest multiple of 512"),
    ],
)
def test_bf16_mistakes_are_named(answers, expected):
    result = ex.check_bf16_answers(*answers)
    assert not result and expected in result.message
