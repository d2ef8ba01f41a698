"""Checkers for the exercises of the long-context chapters (7 and 8).

Each checker compares the reader's answer with a reference computed here from the
definitions, and when the answer is wrong tries the usual mistakes (wavelength ``1/theta``
instead of ``2 pi / theta``, the frequencies ``base**(-i/d)``, the static factor for
dynamic NTK, forgetting YaRN's attention temperature...) to name what went wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from .absolute import CheckResult, _fail

__all__ = [
    "reference_pairs_turning",
    "check_pairs_turning",
    "reference_dynamic_factor",
    "check_dynamic_factor",
    "methods_changing_short_inputs",
    "check_short_input_methods",
]


def reference_pairs_turning(
    head_dim: int, base: float, length: int, *, exponent: float = 2.0, two_pi: bool = True
) -> int:
    """Pairs ``i`` of a RoPE head whose wavelength ``2 pi base**(2i/d)`` is below
    ``length`` (they complete a full turn within ``length`` positions)."""
    count = 0
    for i in range(head_dim // 2):
        wavelength = (2 * math.pi if two_pi else 1.0) * base ** (exponent * i / head_dim)
        count += wavelength < length
    return count


def check_pairs_turning(fn: Callable[[int, float, int], int]) -> CheckResult:
    """``fn(head_dim, base, length)`` must return how many pairs turn fully within
    ``length``."""
    cases = [(128, 500_000.0, 8192), (128, 10_000.0, 4096), (32, 10_000.0, 256), (16, 10_000.0, 64)]
    for d, b, n in cases:
        want = reference_pairs_turning(d, b, n)
        try:
            got = fn(d, b, n)
        except Exception as err:  # the reader's code: report any error
            return _fail(f"fn({d}, {b}, {n}) raised {type(err).__name__}: {err}")
        if got == want:
            continue
        if got == reference_pairs_turning(d, b, n, two_pi=False):
            return _fail(
                f"fn({d}, {b}, {n}) = {got}, expected {want}: the wavelength is "
                "2*pi/theta (positions per full turn), not 1/theta"
            )
        if got == reference_pairs_turning(d, b, n, exponent=1.0):
            return _fail(
                f"fn({d}, {b}, {n}) = {got}, expected {want}: theta_i = "
                "base**(-2i/d) with i the pair index, not base**(-i/d)"
            )
        if got == d // 2 - want:
            return _fail(
                f"fn({d}, {b}, {n}) = {got}, expected {want}: you counted the "
                "pairs that do NOT complete a turn"
            )
        return _fail(f"fn({d}, {b}, {n}) = {got}, expected {want}")
    return CheckResult(True, f"all {len(cases)} cases agree (Llama 3: 35 of 64 pairs)")


def reference_dynamic_factor(factor: float, seq_len: int, original_len: int) -> float:
    """The static NTK factor that dynamic NTK (Hugging Face convention) applies to a
    sequence of ``seq_len``: ``factor * seq_len / L0 - (factor - 1)`` past ``L0``, else
    1 (no scaling)."""
    if seq_len <= original_len:
        return 1.0
    return factor * seq_len / original_len - (factor - 1)


def check_dynamic_factor(fn: Callable[[float, int, int], float]) -> CheckResult:
    """``fn(factor, seq_len, original_len)`` must return dynamic NTK's effective factor."""
    cases = [
        (4.0, 128, 64),
        (4.0, 256, 64),
        (1.0, 256, 64),
        (2.0, 64, 64),
        (4.0, 32, 64),
        (8.0, 32768, 4096),
    ]
    for s, m, n0 in cases:
        want = reference_dynamic_factor(s, m, n0)
        try:
            got = float(fn(s, m, n0))
        except Exception as err:  # the reader's code: report any error
            return _fail(f"fn({s}, {m}, {n0}) raised {type(err).__name__}: {err}")
        if math.isclose(got, want, rel_tol=1e-9):
            continue
        if m <= n0 and not math.isclose(got, 1.0):
            return _fail(
                f"fn({s}, {m}, {n0}) = {got}, expected 1: up to L0 dynamic NTK changes nothing"
            )
        if math.isclose(got, s):
            return _fail(
                f"fn({s}, {m}, {n0}) = {got}, expected {want}: that is the static "
                "factor; dynamic NTK recomputes it from the current length"
            )
        if math.isclose(got, m / n0):
            return _fail(
                f"fn({s}, {m}, {n0}) = {got}, expected {want}: m / L0 is the rule "
                "with factor = 1 only; the factor s enters as s*m/L0 - (s - 1)"
            )
        if math.isclose(got, s * m / n0):
            return _fail(
                f"fn({s}, {m}, {n0}) = {got}, expected {want}: subtract (s - 1), "
                "so that the factor is 1 at m = L0"
            )
        return _fail(f"fn({s}, {m}, {n0}) = {got}, expected {want}")
    return CheckResult(True, f"all {len(cases)} cases agree")


def methods_changing_short_inputs(
    head_dim: int, *, base: float, train_len: int, factor: float, scalings: dict
) -> set[str]:
    """The methods of ``scalings`` (name -> rope_scaling dict) that change what the model
    computes on an input of ``train_len``: other frequencies at that length, or an
    attention scaling other than 1."""
    from ...rope import rope_inv_freq

    theta0, _ = rope_inv_freq(head_dim, base=base)
    out = set()
    for name, scaling in scalings.items():
        theta, att = rope_inv_freq(head_dim, base=base, scaling=scaling, seq_len=train_len)
        if not (theta - theta0).abs().max() < 1e-12 or not math.isclose(att, 1.0):
            out.add(name)
    return out


def check_short_input_methods(
    answer: Iterable[str],
    *,
    head_dim: int,
    base: float,
    train_len: int,
    factor: float,
    scalings: dict,
) -> CheckResult:
    """``answer``: the names of the methods that change the model on inputs of ``L``."""
    want = methods_changing_short_inputs(
        head_dim, base=base, train_len=train_len, factor=factor, scalings=scalings
    )
    got = set(answer)
    unknown = got - set(scalings)
    if unknown:
        return _fail(f"unknown methods {sorted(unknown)}; choose among {sorted(scalings)}")
    if got == want:
        return CheckResult(True, f"{sorted(want)} change inputs of length {train_len}")
    hints = []
    if "dynamic" in got and "dynamic" not in want:
        hints.append("dynamic NTK leaves every length up to L0 untouched")
    yarn = {m for m in want if m.startswith("yarn")} - got
    if yarn:
        hints.append(
            f"{sorted(yarn)}: static YaRN rescales the slow pairs and multiplies "
            "the logits at every length, short inputs included"
        )
    if "llama3" in want - got:
        hints.append("Llama 3 divides its slow pairs by the factor at every length")
    if "ntk" in want - got:
        hints.append("static NTK raises the base for every input, short ones included")
    missing, extra = sorted(want - got), sorted(got - want)
    return _fail(f"missing {missing}, wrong {extra}" + ("; " + "; ".join(hints) if hints else ""))
