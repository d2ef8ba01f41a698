"""The checkers of chapters 7-8 accept right answers and name the typical wrong ones."""

import math

import pytest

from posenc_lib.book.exercises import long_context as lc
from posenc_lib.book.lab_extension import scaling_dict


def test_pairs_turning_reference():
    assert lc.reference_pairs_turning(128, 500_000.0, 8192) == 35
    assert lc.reference_pairs_turning(32, 10_000.0, 256) == 7


def _right(d, b, n):
    return sum(2 * math.pi * b ** (2 * i / d) < n for i in range(d // 2))


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda d, b, n: sum(b ** (2 * i / d) < n for i in range(d // 2)), "2\\*pi/theta"),
        (
            lambda d, b, n: sum(2 * math.pi * b ** (i / d) < n for i in range(d // 2)),
            "base\\*\\*\\(-2i/d\\)",
        ),
        (lambda d, b, n: d // 2 - _right(d, b, n), "do NOT complete"),
        (lambda d, b, n: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_pairs_turning_names_the_mistake(fn, match):
    res = lc.check_pairs_turning(fn)
    assert not res and res.message and __import__("re").search(match, res.message), res


def test_pairs_turning_accepts_right_answer():
    assert lc.check_pairs_turning(_right)


def test_dynamic_factor():
    assert lc.check_dynamic_factor(lambda s, m, n0: max(1.0, s * m / n0 - (s - 1)))
    cases = [
        (lambda s, m, n0: s, "static factor"),
        (lambda s, m, n0: m / n0 if m > n0 else 1.0, "factor = 1 only"),
        (lambda s, m, n0: s * m / n0 if m > n0 else 1.0, "subtract"),
        (lambda s, m, n0: s * m / n0 - (s - 1), "changes nothing"),
    ]
    for fn, match in cases:
        res = lc.check_dynamic_factor(fn)
        assert not res and match in res.message, res


def test_short_input_methods():
    L = 64
    scalings = {
        m: scaling_dict(m, factor=4, original_len=L)
        for m in ("linear", "ntk", "dynamic", "yarn", "llama3")
    }
    want = lc.methods_changing_short_inputs(
        32, base=10_000.0, train_len=L, factor=4, scalings=scalings
    )
    assert want == {"linear", "ntk", "yarn", "llama3"}
    kw = dict(head_dim=32, base=10_000.0, train_len=L, factor=4, scalings=scalings)
    assert lc.check_short_input_methods(want, **kw)
    res = lc.check_short_input_methods({"linear", "ntk", "dynamic"}, **kw)
    assert not res and "dynamic NTK leaves" in res.message and "YaRN" in res.message
    res = lc.check_short_input_methods({"linear", "ntk", "yarn"}, **kw)
    assert not res and "Llama 3" in res.message
    assert not lc.check_short_input_methods({"rerope"}, **kw)
