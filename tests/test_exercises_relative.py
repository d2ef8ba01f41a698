"""The exercise checkers of the relative-position chapters accept right answers and name
the mistake in deliberately wrong ones."""

import math

import pytest
import torch

import posenc_lib as pe
from posenc_lib.book.exercises import relative

# ------------------------------------------------------------------------------ ALiBi slopes


def slopes_paper(n):
    """A right answer written from the paper's code (start = ratio), plain Python floats."""

    def power_of_two(m):
        start = 2 ** (-(2 ** -(math.log2(m) - 3)))
        return [start * start**i for i in range(m)]

    if math.log2(n).is_integer():
        return power_of_two(n)
    p = 2 ** math.floor(math.log2(n))
    return power_of_two(p) + power_of_two(2 * p)[0::2][: n - p]


def slopes_naive(n):
    return torch.tensor([2 ** (-8 * h / n) for h in range(1, n + 1)])


def slopes_negative(n):
    return -torch.tensor(slopes_paper(n))


def slopes_reversed(n):
    return torch.tensor(slopes_paper(n)[::-1])


def slopes_truncate(n):
    p = 2 ** math.ceil(math.log2(n))
    return torch.tensor([2 ** (-8 * h / p) for h in range(1, n + 1)])


def slopes_consecutive(n):
    p = 2 ** math.floor(math.log2(n))
    return torch.tensor(slopes_paper(p) + slopes_paper(2 * p)[: n - p])


def slopes_from_zero(n):
    return torch.tensor([2 ** (-8 * h / n) for h in range(n)])


def slopes_sorted(n):
    return torch.tensor(sorted(slopes_paper(n), reverse=True))


def slopes_wrong_shape(n):
    return torch.tensor(slopes_paper(n))[None]


def slopes_raises(n):
    raise ZeroDivisionError("oops")


def test_slopes_right_answers_pass():
    result = relative.check_alibi_slopes(slopes_paper)
    assert result and "match" in result.message
    import posenc_lib as pe

    assert relative.check_alibi_slopes(pe.alibi_slopes)


@pytest.mark.parametrize(
    ("fn", "needle"),
    [
        (slopes_naive, "2^(-8h/n) for a head count n that is not a power of two"),
        (slopes_negative, "negative"),
        (slopes_reversed, "reversed"),
        (slopes_truncate, "first n slopes of the sequence for the next power of two"),
        (slopes_consecutive, "every other one"),
        (slopes_from_zero, "h starts at 0"),
        (slopes_sorted, "you sorted them"),
        (slopes_wrong_shape, "shape (1, 1), expected (1,)"),
        (slopes_raises, "raised ZeroDivisionError: oops"),
    ],
)
def test_slopes_mistakes_are_named(fn, needle):
    result = relative.check_alibi_slopes(fn)
    assert not result
    assert needle in result.message, result.message


def test_slopes_unknown_mistake_points_at_the_head():
    def off(n):
        s = torch.tensor(slopes_paper(n))
        if n == 8:
            s[5] = 0.5
        return s

    result = relative.check_alibi_slopes(off)
    assert not result
    assert "[num_heads=8] head 6 (index 5) has slope 0.5" in result.message


def test_reference_slopes_hand_values():
    assert relative.reference_alibi_slopes(8) == [2.0**-k for k in range(1, 9)]
    twelve = relative.reference_alibi_slopes(12)
    assert twelve[8:] == pytest.approx([2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5])


# ------------------------------------------------------------------------------- ALiBi bias


def bias_right(n, s):
    m = torch.tensor(slopes_paper(n))[:, None, None]
    i = torch.arange(s)[:, None]
    j = torch.arange(s)[None, :]
    return (-m * (i - j)).masked_fill(j > i, float("-inf"))


def bias_finite_mask(n, s):
    return bias_right(n, s).clamp(min=-1e9)


def bias_positive(n, s):
    out = -bias_right(n, s)
    return out.masked_fill(torch.ones(s, s, dtype=torch.bool).triu(1), float("-inf"))


def bias_no_mask(n, s):
    m = torch.tensor(slopes_paper(n))[:, None, None]
    return -m * (torch.arange(s)[:, None] - torch.arange(s)[None, :]).clamp(min=0)


def bias_symmetric(n, s):
    m = torch.tensor(slopes_paper(n))[:, None, None]
    return -m * (torch.arange(s)[:, None] - torch.arange(s)[None, :]).abs()


def bias_transposed(n, s):
    return bias_right(n, s).transpose(1, 2)


def bias_naive_slopes(n, s):
    m = slopes_naive(n)[:, None, None]
    i = torch.arange(s)[:, None]
    j = torch.arange(s)[None, :]
    return (-m * (i - j)).masked_fill(j > i, float("-inf"))


def bias_heads_last(n, s):
    return bias_right(n, s).permute(1, 2, 0)


def test_bias_right_answers_pass():
    import posenc_lib as pe

    assert relative.check_alibi_bias(bias_right)
    assert relative.check_alibi_bias(lambda n, s: pe.alibi_bias(n, s))
    result = relative.check_alibi_bias(bias_finite_mask)
    assert result and "large finite negative number" in result.message


@pytest.mark.parametrize(
    ("fn", "needle"),
    [
        (bias_positive, "the sign is wrong"),
        (bias_no_mask, "must be -inf"),
        (bias_symmetric, "symmetric bias -m_h |i - j|"),
        (bias_transposed, "transposed"),
        (bias_naive_slopes, "slopes are wrong: you used 2^(-8h/n)"),
        (bias_heads_last, "put the heads first"),
    ],
)
def test_bias_mistakes_are_named(fn, needle):
    result = relative.check_alibi_bias(fn)
    assert not result
    assert needle in result.message, result.message


# ------------------------------------------------------------------------------- T5 buckets


def bucket_loop(
    rel, *, bidirectional=True, num_buckets=32, max_distance=128, exact_le=False, max_exact_shift=0
):
    """A right answer written element by element in Python floats (as in Mesh TF)."""
    out = []
    for r in rel.tolist():
        n, ret = num_buckets, 0
        if bidirectional:
            n //= 2
            ret += n if r > 0 else 0
            d = abs(r)
        else:
            d = max(-r, 0)
        max_exact = n // 2 + max_exact_shift
        if d < max_exact or (exact_le and d == max_exact):
            out.append(ret + d)
            continue
        val = max_exact + int(
            math.log(d / max_exact) / math.log(max_distance / max_exact) * (n - max_exact)
        )
        out.append(ret + min(val, n - 1))
    return torch.tensor(out)


def _wrong(mistake):
    def fn(rel, *, bidirectional=True, num_buckets=32, max_distance=128):
        return relative.reference_t5_bucket(
            rel,
            bidirectional=bidirectional,
            num_buckets=num_buckets,
            max_distance=max_distance,
            mistake=mistake,
        )

    return fn


def bucket_sign_flipped(rel, **kw):
    return bucket_loop(-rel, **kw)


def bucket_max_exact_plus1(rel, **kw):
    """max_exact one too large, written as a loop."""
    return bucket_loop(rel, **kw, max_exact_shift=1)


def bucket_le(rel, **kw):
    """``r <= max_exact`` instead of ``r < max_exact``: the same buckets (a right answer)."""
    return bucket_loop(rel, **kw, exact_le=True)


def bucket_float(rel, **kw):
    return bucket_loop(rel, **kw).float() + 0.5


def bucket_out_of_range(rel, **kw):
    out = bucket_loop(rel, **kw)
    out[0] = 1000
    return out


def bucket_one_wrong(rel, **kw):
    out = bucket_loop(rel, **kw)
    out[0] = 3
    return out


def test_bucket_right_answers_pass():
    import posenc_lib as pe

    assert relative.check_t5_bucket(bucket_loop)
    assert relative.check_t5_bucket(bucket_le)
    assert relative.check_t5_bucket(pe.t5_relative_position_bucket)
    # an answer returning floats with integral values is fine
    assert relative.check_t5_bucket(lambda rel, **kw: bucket_loop(rel, **kw).double())


@pytest.mark.parametrize(
    ("fn", "needle"),
    [
        (bucket_sign_flipped, "sign convention"),
        (bucket_max_exact_plus1, "off by one in max_exact"),
        (_wrong("max_exact_minus1"), "yours is one smaller"),
        (_wrong("no_halving"), "halve num_buckets"),
        (_wrong("max_exact_full"), "computed after halving"),
        (_wrong("no_clamp"), "clamp the logarithmic bucket"),
        (_wrong("round"), "floored"),
        (_wrong("causal_abs"), "you used |j - i|"),
        (bucket_float, "must be integers"),
        (bucket_out_of_range, "must lie in [0, 32), got values from 0 to 1000"),
        (bucket_one_wrong, "j - i = -400 gets bucket 3, expected 15 (1 of 801"),
    ],
)
def test_bucket_mistakes_are_named(fn, needle):
    result = relative.check_t5_bucket(fn)
    assert not result
    assert needle in result.message, result.message


def test_bucket_reference_hand_values():
    # T5 defaults, bidirectional: 16 buckets per direction, max_exact = 8.
    rel = torch.tensor([0, -1, -7, -8, -12, -16, -127, -128, -1000, 1, 8, 200])
    want = torch.tensor([0, 1, 7, 8, 9, 10, 15, 15, 15, 17, 24, 31])
    got = relative.reference_t5_bucket(rel, bidirectional=True, num_buckets=32, max_distance=128)
    assert torch.equal(got, want)


# ----------------------------------------------------------------------------- Shaw indices


def shaw_right(q_len, k_len, k):
    return [[min(max(j - i, -k), k) + k for j in range(k_len)] for i in range(q_len)]


def shaw_sign(q_len, k_len, k):
    return (torch.arange(q_len)[:, None] - torch.arange(k_len)[None, :]).clamp(-k, k) + k


def shaw_no_shift(q_len, k_len, k):
    return torch.tensor(shaw_right(q_len, k_len, k)) - k


def shaw_no_clip(q_len, k_len, k):
    return torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None] + k


def shaw_clip_short(q_len, k_len, k):
    rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
    return rel.clamp(-k + 1, k - 1) + k


def shaw_transposed(q_len, k_len, k):
    return torch.tensor(shaw_right(q_len, k_len, k)).T


def shaw_float(q_len, k_len, k):
    return torch.tensor(shaw_right(q_len, k_len, k), dtype=torch.float32)


def test_shaw_right_answers_pass():
    import posenc_lib as pe

    assert relative.check_shaw_indices(shaw_right)
    assert relative.check_shaw_indices(
        lambda q, k, m: pe.shaw_relative_indices(q, k, max_distance=m)
    )


@pytest.mark.parametrize(
    ("fn", "needle"),
    [
        (shaw_sign, "you used i - j"),
        (shaw_no_shift, "not shifted"),
        (shaw_no_clip, "no clipping"),
        (shaw_clip_short, "not k - 1"),
        (shaw_transposed, "transposed"),
        (shaw_float, "dtype torch.float32"),
    ],
)
def test_shaw_mistakes_are_named(fn, needle):
    result = relative.check_shaw_indices(fn)
    assert not result
    assert needle in result.message, result.message


# ----------------------------------------------------------------------------- rel_shift


def rel_shift_xl(x):
    """Transformer-XL's _rel_shift, moved to the last two dims."""
    *lead, q_len, k_len = x.shape
    padded = torch.cat((x.new_zeros(*lead, q_len, 1), x), dim=-1)
    return padded.view(*lead, k_len + 1, q_len)[..., 1:, :].reshape(x.shape)


def rel_shift_gather(x):
    """A right answer by indexing: out[i, j] = x[i, j + q_len - 1 - i] (causal part)."""
    *lead, q_len, k_len = x.shape
    col = torch.arange(k_len)[None, :] + q_len - 1 - torch.arange(q_len)[:, None]
    return x.gather(-1, col.clamp(0, k_len - 1).expand(*lead, q_len, k_len))


def test_rel_shift_right_answers_pass():
    assert relative.check_rel_shift(rel_shift_xl)
    assert relative.check_rel_shift(rel_shift_gather)


def test_rel_shift_matches_library_transformer_xl():
    """The shifted (q + v) . W_R R, R ordered far to near, = the library's (b) + (d)."""
    torch.manual_seed(0)
    q_len, k_len, heads, hd, dm = 3, 7, 2, 4, 8
    xl = pe.TransformerXLRelativeBias(dm, heads, hd)
    q, k = torch.randn(1, heads, q_len, hd), torch.randn(1, heads, k_len, hd)
    with torch.no_grad():
        _, (_, t_b, _, t_d) = pe.transformer_xl_logits(
            q,
            k,
            xl.encodings(q_len, k_len, offset=k_len - q_len),
            xl.u,
            xl.v,
            xl.w_r,
            return_terms=True,
        )
        far_to_near = torch.arange(k_len - 1, -1, -1).float()
        r = pe.sinusoidal_encoding(far_to_near, dm, layout="concat")  # (k_len, dm)
        w_r_r = torch.einsum("hdm,cm->hcd", xl.w_r, r)
        raw = torch.einsum("bhqd,hcd->bhqc", q + xl.v[None, :, None], w_r_r)
    causal = torch.ones(q_len, k_len, dtype=torch.bool).tril(k_len - q_len)
    torch.testing.assert_close(
        relative.reference_rel_shift(raw)[..., causal], (t_b + t_d)[..., causal]
    )


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("pad_right", "on the left"),
        ("drop_last", "drop the first row"),
        ("ascending", "column c as distance c"),
    ],
)
def test_rel_shift_mistakes_are_named(variant, expected):
    result = relative.check_rel_shift(lambda x: relative.reference_rel_shift(x, variant=variant))
    assert not result and expected in result.message


def test_rel_shift_other_failures():
    assert "nothing was shifted" in relative.check_rel_shift(lambda x: x).message
    assert "shape" in relative.check_rel_shift(lambda x: x[..., 1:]).message
    noisy = relative.check_rel_shift(lambda x: rel_shift_xl(x) + 1.0)
    assert not noisy and "should hold distance" in noisy.message
    boom = relative.check_rel_shift(lambda x: 1 / 0)
    assert not boom and "ZeroDivisionError" in boom.message


# --------------------------------------------------------------- numeric answers


def test_causal_bucket_answers():
    assert relative.check_causal_bucket_answers(17, 32, 16)
    assert pe.t5_relative_position_bucket(-20, bidirectional=False).item() == 17


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ((10, 32, 16), "bidirectional answer"),
        ((20, 32, 16), "only distances 0 .. 15"),
        ((18, 32, 16), "not 18"),
        ((17, 31, 16), "31 is the bidirectional count"),
        ((17, 32, 8), "8 is the bidirectional value"),
    ],
)
def test_causal_bucket_mistakes_are_named(answers, expected):
    result = relative.check_causal_bucket_answers(*answers)
    assert not result and expected in result.message


def test_alibi_range_answers():
    assert relative.check_alibi_range_answers(14, 256 * math.log(100))


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ((13, 256 * math.log(100)), "h > 2 log2(100) = 13.3"),
        ((12, 256 * math.log(100)), "head 14 (1-based)"),
        ((14, 256.0), "not 1"),
        ((14, 512.0), "natural logarithm"),
        ((14, 100.0), "256 ln 100"),
    ],
)
def test_alibi_range_mistakes_are_named(answers, expected):
    result = relative.check_alibi_range_answers(*answers)
    assert not result and expected in result.message
