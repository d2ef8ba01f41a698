"""apply_rope under torch.func transforms and forward-mode AD, against the plain formula.

The reference is Hugging Face's formula ``x * cos + rotate_half(x) * sin`` written out
here, which every transform handles with ordinary operations.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwad
from torch.func import grad, jacfwd, jacrev, jvp, vmap
from torch.testing import assert_close

import posenc_lib as pe

# forward-mode AD loads torch's own jvp decompositions through torch.jit.script, which
# warns in torch 2.13 (not something this library calls)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

N = 4  # rotated pairs; features 8..9 pass unchanged (partial rotary)


def formula(x, cos, sin, layout):
    """The rotation written out with differentiable operations only."""
    if layout == "half":
        a, b = x[..., :N], x[..., N : 2 * N]
        rot = torch.cat((a * cos - b * sin, b * cos + a * sin), -1)
    else:
        a, b = x[..., 0 : 2 * N : 2], x[..., 1 : 2 * N : 2]
        rot = torch.stack((a * cos - b * sin, b * cos + a * sin), -1).flatten(-2)
    return torch.cat((rot, x[..., 2 * N :]), -1)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 2 * N + 2, dtype=torch.float64, generator=gen)
    cos, sin = pe.rope_cos_sin(5, pe.rope_inv_freq(2 * N)[0], dtype=torch.float64)
    return x, cos, sin


LAYOUTS = pytest.mark.parametrize("layout", ["half", "interleaved"])


@LAYOUTS
def test_grad(data, layout):
    x, cos, sin = data

    def loss(fn):
        return lambda x, c, s: (fn(x, c, s) ** 3).sum()

    ours = grad(loss(lambda x, c, s: pe.apply_rope(x, c, s, layout=layout)), argnums=(0, 1, 2))
    ref = grad(loss(lambda x, c, s: formula(x, c, s, layout)), argnums=(0, 1, 2))
    assert_close(ours(x, cos, sin), ref(x, cos, sin))


@LAYOUTS
def test_vmap(data, layout):
    x, cos, sin = data
    out = vmap(lambda t: pe.apply_rope(t, cos, sin, layout=layout))(x)
    assert_close(out, formula(x, cos, sin, layout))
    # batched tables too
    tables = torch.stack((cos, 2 * cos, 3 * cos))
    out = vmap(lambda t, c: pe.apply_rope(t, c, sin, layout=layout))(x, tables)
    assert_close(out, formula(x, tables, sin, layout))


@LAYOUTS
@pytest.mark.parametrize("jac", [jacrev, jacfwd])
def test_jacobians(data, layout, jac):
    x, cos, sin = data
    for argnum in (0, 1, 2):
        ours = jac(lambda *a: pe.apply_rope(*a, layout=layout), argnums=argnum)(x[0], cos, sin)
        ref = jac(lambda *a: formula(*a, layout), argnums=argnum)(x[0], cos, sin)
        assert_close(ours, ref)


@LAYOUTS
def test_jvp(data, layout):
    x, cos, sin = data
    tangents = tuple(torch.randn_like(t) for t in (x, cos, sin))
    _, ours = jvp(lambda *a: pe.apply_rope(*a, layout=layout), (x, cos, sin), tangents)
    _, ref = jvp(lambda *a: formula(*a, layout), (x, cos, sin), tangents)
    assert_close(ours, ref)


@LAYOUTS
def test_forward_mode_ad(data, layout):
    x, cos, sin = data
    tx, tc = torch.randn_like(x), torch.randn_like(cos)
    with fwad.dual_level():
        out = pe.apply_rope(fwad.make_dual(x, tx), fwad.make_dual(cos, tc), sin, layout=layout)
        tangent = fwad.unpack_dual(out).tangent
    # linear in (x, cos) jointly: d = R(tx) + formula with (tc, 0) in place of (cos, sin)
    expected = formula(tx, cos, sin, layout) + formula(x, tc, torch.zeros_like(sin), layout)
    expected[..., 2 * N :] = tx[..., 2 * N :]
    assert_close(tangent, expected)


def test_gradcheck_all_inputs_and_double_backward(data):
    x, cos, sin = (t.clone().requires_grad_() for t in data)
    fn = lambda x, c, s: pe.apply_rope(x, c, s)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, cos, sin), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(fn, (x, cos, sin))
