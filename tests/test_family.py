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
        qm = pe.apply_rope((q * zeta ** (m / scale_base))[None], cos[:1], sin[:1], layout="interleaved")
        kn = pe.apply_rope((k * zeta ** (-n / scale_base))[None], cos[1:], sin[1:], layout="interleaved")
        want = (qm @ kn.T).item()
        got = family.xpos_score(q, k, torch.tensor([float(r)]), scale_base=scale_base).item()
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(family.xpos_score(q, k, torch.tensor([0.0])).item(), (q @ k).item())
