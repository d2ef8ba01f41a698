"""Checkers for the exercises of the absolute-position chapters (sinusoidal and learned).

Every checker calls the reader's function on several inputs, compares with a reference
computed in float64, and, when the answer is wrong, tries the usual mistakes (sine and
cosine swapped, exponent ``i/d`` instead of ``2i/d``, concatenated instead of interleaved
layout, positions starting at 1, a transposed rotation, ...) to say precisely what went
wrong. The result is a :class:`CheckResult`: truthy when the answer is right, with a
message either way.

Conventions (those of :mod:`posenc_lib.sinusoidal`): the interleaved table is
``P[p, 2i] = sin(p * w_i)``, ``P[p, 2i+1] = cos(p * w_i)`` with ``w_i = base**(-2i/d)``;
the concatenated table puts the ``d/2`` sines first and the ``d/2`` cosines after them.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "CheckResult",
    "check_sinusoidal_table",
    "check_shift_matrix",
    "check_layout_permutation",
    "check_offset_similarity",
    "reference_table",
]

_ATOL = 1e-4
_EXPONENTS = {
    "2i/d": "w_i = base**(-2i/d) with i the pair index (correct)",
    "i/d": "the exponent is i/d instead of 2i/d (i is the pair index, so the factor 2 is needed)",
    "j/d": "the exponent uses the column index j (base**(-j/d)), so the sine and cosine of "
    "a pair get different frequencies; both columns 2i and 2i+1 must use base**(-2i/d)",
    "2j/d": "the exponent is 2j/d with the column index j; use the pair index i = j // 2",
    "-2i/d": "the exponent has the wrong sign: the angle is p / base**(2i/d), not p * base**(2i/d)",
}


@dataclass(frozen=True, repr=False)
class CheckResult:
    """Outcome of a checker: ``bool(result)`` says if it passed, ``message`` says why.

    ``repr(result)`` is ``"PASSED: ..."`` or ``"FAILED: ..."`` followed by the message.
    """

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("PASSED: " if self.passed else "FAILED: ") + self.message

    __str__ = __repr__


def _fail(message: str) -> CheckResult:
    return CheckResult(False, message)


def reference_table(
    seq_len: int,
    d_model: int,
    *,
    base: float = 10_000.0,
    layout: str = "interleaved",
    swapped: bool = False,
    exponent: str = "2i/d",
    offset: int = 0,
) -> torch.Tensor:
    """A sinusoidal table in float64, right by default, or with one of the usual mistakes.

    Written column by column (a different route from :func:`~posenc_lib.sinusoidal.sinusoidal_encoding`)
    so that the two can be checked against each other.

    Args:
        seq_len: number of positions ``offset, ..., offset + seq_len - 1``.
        d_model: number of columns (even).
        base: the base of the geometric frequency sequence.
        layout: ``"interleaved"`` (sin, cos, sin, cos, ...) or ``"concat"`` (sines, cosines).
        swapped: put the cosine where the sine belongs and vice versa.
        exponent: one of ``"2i/d"`` (right), ``"i/d"``, ``"j/d"``, ``"2j/d"``, ``"-2i/d"``.
        offset: first position (0 is right).

    Returns:
        Tensor of shape ``(seq_len, d_model)``, dtype float64.
    """
    pos = torch.arange(seq_len, dtype=torch.float64) + offset
    half = d_model // 2
    out = torch.empty(seq_len, d_model, dtype=torch.float64)
    for j in range(d_model):
        if layout == "interleaved":
            i, is_cos = j // 2, j % 2 == 1
        else:
            i, is_cos = j % half, j >= half
        power = {"2i/d": -2 * i, "i/d": -i, "j/d": -j, "2j/d": -2 * j, "-2i/d": 2 * i}[exponent]
        angle = pos * base ** (power / d_model)
        out[:, j] = torch.cos(angle) if is_cos != swapped else torch.sin(angle)
    return out


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _call(fn: Callable, args: tuple, kwargs: dict, what: str):
    """Run ``fn``; return (float64 tensor, None) or (None, failure)."""
    shown = ", ".join(
        [repr(a) if not torch.is_tensor(a) else f"<tensor {tuple(a.shape)}>" for a in args]
        + [f"{k}={v!r}" for k, v in kwargs.items()]
    )
    try:
        out = fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001  (any error of the reader's code is reported)
        return None, _fail(f"{what}({shown}) raised {type(err).__name__}: {err}")
    try:
        out = torch.as_tensor(out.detach() if torch.is_tensor(out) else out)
    except Exception:  # noqa: BLE001
        return None, _fail(f"{what}({shown}) returned a {type(out).__name__}; return a tensor")
    if out.is_complex():
        return None, _fail(f"{what}({shown}) returned a complex tensor; return real numbers")
    return out.to(torch.float64), None


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = _ATOL) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=0))


def _first_wrong(got: torch.Tensor, want: torch.Tensor, name: str = "P") -> str:
    bad = ((got - want).abs() > _ATOL).nonzero()
    if not len(bad):
        return "all entries within tolerance"
    idx = tuple(bad[0].tolist())
    where = ", ".join(map(str, idx))
    return (
        f"first wrong entry {name}[{where}] = {got[idx].item():.4f}, expected "
        f"{want[idx].item():.4f} ({len(bad)} of {want.numel()} entries are wrong)"
    )


def _shape_hint(shape: tuple, rows: int, cols: int, row_name: str) -> str:
    msg = f"shape {shape}, expected ({rows}, {cols}) = ({row_name}, d_model)"
    if shape == (cols, rows):
        return msg + ": the table is transposed (rows must be positions)"
    if shape == (1, rows, cols):
        return msg + ": drop the leading batch dimension"
    if shape == (rows, cols // 2):
        return msg + ": only d_model/2 columns; every frequency needs a sine AND a cosine"
    if shape == (rows, 2 * cols):
        return msg + (
            ": twice too many columns; d_model counts the sine and cosine columns "
            "together, so there are d_model/2 frequencies"
        )
    return msg


def check_sinusoidal_table(
    fn: Callable,
    *,
    cases: Sequence[tuple[int, int, float]] = (
        (3, 4, 10_000.0),
        (50, 32, 10_000.0),
        (20, 6, 100.0),
        (7, 2, 10_000.0),
    ),
) -> CheckResult:
    """Check ``fn(seq_len, d_model, base=...)`` returns the interleaved sinusoidal table.

    ``fn`` may leave out ``base``; then only the cases with base 10000 are run.

    Args:
        fn: the reader's function, returning a ``(seq_len, d_model)`` tensor (or array).
        cases: ``(seq_len, d_model, base)`` triples to try, in order.

    Returns:
        A :class:`CheckResult` naming the first mistake found.
    """
    takes_base = _accepts(fn, "base")
    skipped = 0
    for seq_len, d_model, base in cases:
        if not takes_base and base != 10_000.0:
            skipped += 1
            continue
        kwargs = {"base": base} if takes_base else {}
        got, failure = _call(fn, (seq_len, d_model), kwargs, "fn")
        if failure is not None:
            return failure
        case = f"seq_len={seq_len}, d_model={d_model}, base={base:g}"
        if tuple(got.shape) != (seq_len, d_model):
            return _fail(f"[{case}] " + _shape_hint(tuple(got.shape), seq_len, d_model, "seq_len"))
        if not torch.isfinite(got).all():
            return _fail(f"[{case}] the table contains nan or inf")
        want = reference_table(seq_len, d_model, base=base)
        if _close(got, want):
            continue
        return _fail(f"[{case}] " + _diagnose_table(got, seq_len, d_model, base))
    note = f" ({skipped} case(s) with another base skipped: fn has no `base` argument)"
    return CheckResult(
        True,
        "your table matches the sinusoidal encoding on "
        f"{len(cases) - skipped} cases" + (note if skipped else ""),
    )


def _diagnose_table(got: torch.Tensor, seq_len: int, d_model: int, base: float) -> str:
    options = itertools.product(
        ("interleaved", "concat"), (False, True), tuple(_EXPONENTS), (0, 1), (base, 10_000.0)
    )
    matches = []
    for layout, swapped, exponent, offset, used_base in options:
        variant = reference_table(
            seq_len,
            d_model,
            base=used_base,
            layout=layout,
            swapped=swapped,
            exponent=exponent,
            offset=offset,
        )
        if _close(got, variant):
            problems = []
            if layout == "concat":
                problems.append(
                    "it uses the concatenated layout (all sines, then all "
                    "cosines); this exercise asks for the interleaved layout "
                    "P[p, 2i] = sin, P[p, 2i+1] = cos"
                )
            if swapped:
                problems.append(
                    "sine and cosine are swapped: the sine goes in the even "
                    "column (row 0 must read 0, 1, 0, 1, ...)"
                )
            if exponent != "2i/d":
                problems.append(_EXPONENTS[exponent])
            if offset:
                problems.append("positions start at 1; the first row is position 0")
            if used_base != base:
                problems.append(f"the `base` argument is ignored (got base 10000, asked {base:g})")
            matches.append(problems)
    if matches:
        return "; ".join(min(matches, key=len))
    want = reference_table(seq_len, d_model, base=base)
    hint = _first_wrong(got, want)
    if not _close(got[0], want[0]):
        hint += "; row 0 (position 0) should be sin(0)=0 and cos(0)=1 alternating"
    elif got.abs().max() > 1 + _ATOL:
        hint += "; entries exceed 1 in absolute value, which no sine or cosine can"
    return hint


def check_shift_matrix(
    fn: Callable,
    *,
    cases: Sequence[tuple[int, int]] = ((1, 4), (3, 8), (-2, 8), (0, 6), (25, 16)),
    base: float = 10_000.0,
    num_positions: int = 40,
) -> CheckResult:
    """Check ``fn(k, d_model)`` returns ``M_k`` with ``P[p + k] = M_k @ P[p]`` for all ``p``.

    ``P`` is the interleaved table with the given base, positions are column vectors.

    Args:
        fn: the reader's function, returning a ``(d_model, d_model)`` tensor.
        cases: ``(k, d_model)`` pairs to try.
        base: base of the table; passed as ``base=`` if ``fn`` accepts it.
        num_positions: how many starting positions ``p`` to test per case.

    Returns:
        A :class:`CheckResult` naming the first mistake found.
    """
    kwargs = {"base": base} if _accepts(fn, "base") else {}
    for k, d_model in cases:
        got, failure = _call(fn, (k, d_model), kwargs, "fn")
        if failure is not None:
            return failure
        case = f"k={k}, d_model={d_model}"
        if tuple(got.shape) != (d_model, d_model):
            return _fail(f"[{case}] shape {tuple(got.shape)}, expected ({d_model}, {d_model})")
        start = max(0, -k)
        table = reference_table(start + num_positions + max(k, 0), d_model, base=base)
        before, after = table[start : start + num_positions], table[start + k :][:num_positions]
        if _close(before @ got.T, after):
            continue
        return _fail(
            f"[{case}] "
            + _diagnose_shift(got, k, d_model, base, start, num_positions, before, after)
        )
    return CheckResult(
        True,
        f"P[p + k] = M_k P[p] holds for {num_positions} positions p in "
        f"each of {len(cases)} cases (k, d_model)",
    )


def _diagnose_shift(got, k, d_model, base, start, n, before, after) -> str:
    if _close(before @ got, after):
        return (
            "this is the transpose of M_k (a rotation by -k). Each 2x2 block acts on "
            "(sin, cos), so it is [[cos(k w), sin(k w)], [-sin(k w), cos(k w)]]; the "
            "textbook rotation [[cos, -sin], [sin, cos]] is for (cos, sin) pairs"
        )
    if k == 0 and not _close(got, torch.eye(d_model, dtype=got.dtype)):
        return "M_0 must be the identity: shifting by 0 positions changes nothing"
    length = start + n + max(k, 0)
    for layout, exponent in itertools.product(("interleaved", "concat"), tuple(_EXPONENTS)):
        if (layout, exponent) == ("interleaved", "2i/d"):
            continue
        table = reference_table(length, d_model, base=base, layout=layout, exponent=exponent)
        b, a = table[start : start + n], table[start + k :][:n]
        for matrix, extra in ((got, ""), (got.T, " and is transposed")):
            if _close(b @ matrix.T, a):
                what = (
                    "the concatenated layout (pair i is columns i and i + d/2)"
                    if layout == "concat"
                    else "another frequency: " + _EXPONENTS[exponent]
                )
                if layout == "concat" and exponent != "2i/d":
                    what += " and " + _EXPONENTS[exponent]
                return f"your matrix shifts a table built with {what}{extra}"
    mask = torch.block_diag(*[torch.ones(2, 2, dtype=got.dtype)] * (d_model // 2))
    if (got * (1 - mask)).abs().max() > _ATOL:
        return (
            "entries outside the 2x2 diagonal blocks are not zero: a shift never mixes "
            "different frequencies, so M_k is block diagonal"
        )
    residual = (before @ got.T - after).abs().amax(dim=0)
    pair = int(residual.argmax()) // 2
    return (
        f"the shift is wrong for frequency pair i={pair} (columns {2 * pair}, "
        f"{2 * pair + 1}); largest error {residual.max().item():.3g}"
    )


def check_layout_permutation(
    fn: Callable, *, d_models: Sequence[int] = (2, 4, 8, 10)
) -> CheckResult:
    """Check ``perm = fn(d_model)`` satisfies ``concat[:, perm] == interleaved``.

    Args:
        fn: the reader's function, returning a 1-D integer tensor (or list) of length
            ``d_model``.
        d_models: the (even) widths to try.

    Returns:
        A :class:`CheckResult` naming the first mistake found.
    """
    for d_model in d_models:
        try:
            raw = fn(d_model)
        except Exception as err:  # noqa: BLE001
            return _fail(f"fn({d_model}) raised {type(err).__name__}: {err}")
        perm = torch.as_tensor(raw)
        case = f"[d_model={d_model}] "
        if perm.is_floating_point() or perm.is_complex() or perm.dtype == torch.bool:
            return _fail(case + f"dtype {perm.dtype}; return integer indices (torch.long)")
        if tuple(perm.shape) != (d_model,):
            return _fail(case + f"shape {tuple(perm.shape)}, expected ({d_model},)")
        if sorted(perm.tolist()) != list(range(d_model)):
            return _fail(
                case + f"{perm.tolist()} is not a permutation of 0..{d_model - 1}: "
                "every column must be used exactly once"
            )
        concat = reference_table(5, d_model, layout="concat")
        inter = reference_table(5, d_model)
        if _close(concat[:, perm], inter):
            continue
        if _close(inter[:, perm], concat):
            return _fail(
                case + "this is the inverse permutation (it turns interleaved into "
                "concatenated); torch.argsort(perm) inverts it"
            )
        return _fail(
            case + f"concat[:, perm] is not the interleaved table; column 2i must be "
            f"concat column i and column 2i+1 concat column i + d/2 (got {perm.tolist()})"
        )
    return CheckResult(
        True, f"concat[:, perm] equals the interleaved table for d_model in {tuple(d_models)}"
    )


def _offset_similarity(
    table: torch.Tensor,
    max_offset: int,
    *,
    cosine: bool = True,
    roll: bool = False,
    reduce: str = "mean",
) -> torch.Tensor:
    x = torch.nn.functional.normalize(table, dim=1) if cosine else table
    out = []
    for k in range(max_offset + 1):
        other = torch.roll(x, -k, dims=0) if roll else x[k:]
        sims = (x[: len(other)] * other).sum(dim=1)
        out.append(sims.mean() if reduce == "mean" else sims.sum())
    return torch.stack(out)


def check_offset_similarity(fn: Callable, *, seed: int = 0) -> CheckResult:
    """Check ``fn(table, max_offset)`` returns the mean cosine similarity at each offset.

    The expected output has length ``max_offset + 1``; entry ``k`` is the mean over
    ``p = 0 .. L-1-k`` of ``cos(table[p], table[p + k])`` (so entry 0 is 1).

    Args:
        fn: the reader's function.
        seed: seed for the random test tables.

    Returns:
        A :class:`CheckResult` naming the first mistake found.
    """
    gen = torch.Generator().manual_seed(seed)
    scaled = torch.randn(30, 8, generator=gen, dtype=torch.float64)
    scaled = scaled * torch.linspace(0.5, 3.0, 30, dtype=torch.float64)[:, None]
    tables = [
        ("random (30, 8) with unequal row norms", scaled, 10),
        ("sinusoidal (64, 16)", reference_table(64, 16), 20),
    ]
    for name, table, max_offset in tables:
        got, failure = _call(fn, (table.clone(), max_offset), {}, "fn")
        if failure is not None:
            return failure
        case = f"[{name}, max_offset={max_offset}] "
        want = _offset_similarity(table, max_offset)
        if _close(got, want):
            continue
        if got.shape == (max_offset,) and (_close(got, want[1:]) or _close(got, want[:-1])):
            return _fail(
                case + "one entry short: include both offset 0 and offset max_offset "
                f"(length {max_offset + 1})"
            )
        if tuple(got.shape) != (max_offset + 1,):
            return _fail(case + f"shape {tuple(got.shape)}, expected ({max_offset + 1},)")
        dot = "used the dot product; divide by the norms of both rows (cosine similarity)"
        wrap = (
            "wraps around the end of the table (torch.roll); pair p with p + k only while p + k < L"
        )
        variants = [
            (dot, _offset_similarity(table, max_offset, cosine=False)),
            (wrap, _offset_similarity(table, max_offset, roll=True)),
            (
                "summed over p instead of averaging",
                _offset_similarity(table, max_offset, reduce="sum"),
            ),
        ]
        for message, variant in variants:
            if _close(got, variant):
                return _fail(case + message)
        return _fail(case + _first_wrong(got, want, name="out"))
    return CheckResult(True, "offset similarities match on a random and a sinusoidal table")
