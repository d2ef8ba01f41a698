"""The wider-family curves match their formulas and an independent construction."""

import math

import pytest
import torch

import posenc_lib as pe
from posenc_lib.book import family


def test_nope_and_kerple_values():
    r = torch.arange(6)
    assert torch.equal(family.nope_bias(r), torch.zeros(6, dtype=torch.float64))
    got = family.kerple_log_bias(r, p=2.0, a=0.5)
    assert got[0] == 0.0
    assert math.isclose(got[4].item(), -2.0 * math.log(1 + 0.5 * 4), rel_tol=1e-12)
    assert (got.diff() < 0).all()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: family.kerple_log_bias(torch.arange(3), p=0.0), "p"),
        (lambda: family.kerple_log_bias(torch.arange(3), a=-1.0), "a"),
        (lambda: family.nope_bias(torch.tensor([-1, 0])), "r must"),
        (lambda: family.xpos_decay(7), "head_dim"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_xpos_decay_formula():
    d = 8
    torch.testing.assert_close(
        family.xpos_decay(d),
        (torch.arange(0, d, 2, dtype=torch.float64) + 0.4 * d) / (1.4 * d),
    )
    assert (family.xpos_decay(64) < 1).all()


def test_xpos_score_equals_scaled_rope_construction():
    torch.manual_seed(0)
    d, scale_base, m = 16, 512.0, 900
    q, k = torch.randn(2, d, dtype=torch.float64).unbind()
    zeta = family.xpos_decay(d).repeat_interleave(2)
    inv = pe.base_inv_freq(d, 10_000.0)  # float64
    for r in (0, 1, 5, 300):
        n = m - r
        angles = torch.tensor([[m], [n]], dtype=torch.float64) * inv
        cos, sin = angles.cos(), angles.sin()
        qm = pe.apply_rope(
            (q * zeta ** (m / scale_base))[None], cos[:1], sin[:1], layout="interleaved"
        )
        kn = pe.apply_rope(
            (k * zeta ** (-n / scale_base))[None], cos[1:], sin[1:], layout="interleaved"
        )
        want = (qm @ kn.T).item()
        got = family.xpos_score(q, k, torch.tensor([float(r)]), scale_base=scale_base).item()
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(family.xpos_score(q, k, torch.tensor([0.0])).item(), (q @ k).item())


def _sinusoidal(pos: torch.Tensor, d: int) -> torch.Tensor:
    w = 10_000.0 ** (-2 * torch.arange(1, d // 2 + 1, dtype=torch.float64) / d)
    ang = pos.double()[:, None] * w
    return torch.cat([ang.sin(), ang.cos()], 1)


def test_sandwich_is_a_shifted_compressed_sinusoidal_dot_product():
    d, heads = 16, 4
    r = torch.arange(40)
    for h in (1, 3):
        got = family.sandwich_bias(r, d, head=h, num_heads=heads)
        for m in (0, 37):  # the dot product depends on r only, not on m
            dot = (_sinusoidal(m + r, d) * _sinusoidal(torch.tensor([m]), d)).sum(1)
            torch.testing.assert_close(got, (dot - d / 2) / (8 * h / heads))
        assert got[0] == 0 and (got[1:] < 0).all()
    far = family.sandwich_bias(torch.arange(50_000), d, head=1, num_heads=heads)
    assert far.min() >= -d / (8 / heads) and far.min() < -0.5 * d / (8 / heads)


def test_fire_input_is_progressive_interpolation():
    c, L = 0.1, 512.0
    for i in (10, 512, 4096):
        r = torch.arange(i + 1)
        x = family.fire_input(r, i, c=c, threshold=L)
        want = torch.log1p(c * r.double()) / math.log1p(c * max(i, L))
        torch.testing.assert_close(x, want)
        assert x[0] == 0 and (x.diff() > 0).all() and x.max() <= 1
        assert (x[-1] == 1) == (i >= L)  # below the threshold the input stays under 1
    with pytest.raises(ValueError, match="query_pos"):
        family.fire_input(torch.tensor([5]), 4)


def test_p_rope_frequencies_and_score():
    d = 16
    full = pe.base_inv_freq(d, 10_000.0).double()
    torch.testing.assert_close(family.p_rope_inv_freq(d, 1.0), full)
    assert (family.p_rope_inv_freq(d, 0.0) == 0).all()
    half = family.p_rope_inv_freq(d, 0.5)
    assert torch.equal(half[:4], full[:4]) and (half[4:] == 0).all()  # lowest removed
    torch.manual_seed(1)
    q, k = torch.randn(2, d, dtype=torch.float64).unbind()
    r = torch.tensor([0.0, 3.0, 250.0])
    # RoPE frequencies: the score of the interleaved RoPE construction
    for dist in r.tolist():
        ang = torch.tensor([[dist], [0.0]], dtype=torch.float64) * full
        cos, sin = ang.cos(), ang.sin()
        qm = pe.apply_rope(q[None], cos[:1], sin[:1], layout="interleaved")
        kn = pe.apply_rope(k[None], cos[1:], sin[1:], layout="interleaved")
        got = family.rotary_score(q, k, torch.tensor([dist]), full).item()
        assert math.isclose(got, (qm @ kn.T).item(), rel_tol=1e-9, abs_tol=1e-9)
    # p = 0 is NoPE: the plain dot product at every distance
    torch.testing.assert_close(
        family.rotary_score(q, k, r, family.p_rope_inv_freq(d, 0.0)),
        (q @ k).expand(3),
    )


def test_cope_positions_count_gates():
    torch.manual_seed(0)
    g = torch.rand(6, 6)
    got = family.cope_positions(g)
    for i in range(6):
        for j in range(6):
            want = g[i, j : i + 1].double().sum().item() if j <= i else 0.0
            assert math.isclose(got[i, j].item(), want, abs_tol=1e-12)
    ones = family.cope_positions(torch.ones(5, 5))
    i, j = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
    torch.testing.assert_close(ones, torch.where(j <= i, i - j + 1, 0).double())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: family.sandwich_bias(torch.arange(3), 8, head=9, num_heads=8), "head"),
        (lambda: family.sandwich_bias(torch.arange(3), 7), "head_dim"),
        (lambda: family.fire_input(torch.arange(3), 4, c=0.0), "c"),
        (lambda: family.p_rope_inv_freq(8, 1.5), "p must"),
        (lambda: family.cope_positions(torch.ones(2, 3)), "square"),
        (lambda: family.cope_positions(2 * torch.ones(2, 2)), r"\[0, 1\]"),
        (
            lambda: family.rotary_score(
                torch.ones(4), torch.ones(4), torch.arange(2), torch.ones(3)
            ),
            "inv_freq",
        ),
    ],
)
def test_new_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
