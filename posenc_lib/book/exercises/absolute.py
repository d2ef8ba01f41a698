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
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "CheckResult",
    "check_sinusoidal_table",
    "check_shift_matrix",
    "check_layout_permutation",
    "check_offset_similarity",
    "check_table_entries",
    "check_alias_position",
    "check_learned_params",
    "check_adamw_decay",
    "check_sinusoidal_module",
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

    ``repr(result)`` is ``"PASSED: ..."`` or ``"FAILED: ..."`` followed by the message;
    ``str(result)`` is the same text wrapped at 88 columns.
    """

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("PASSED: " if self.passed else "FAILED: ") + self.message

    def __str__(self) -> str:
        # printed in notebooks: wrapped to the 88 columns of the book's code column
        return textwrap.fill(repr(self), width=88, subsequent_indent="  ")


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


# ------------------------------------------------------------------- chapter 3: tables


def check_learned_params(gpt2_medium, sinusoidal, long_table) -> CheckResult:
    """Check the three parameter counts of the exercise on learned tables.

    Args:
        gpt2_medium: parameters of GPT-2 medium's position table (1024 rows, width 1024).
        sinusoidal: parameters of a sinusoidal table of the same size.
        long_table: parameters of a learned table for 32 768 positions at width 4096.
    """
    answers = {"gpt2_medium": gpt2_medium, "sinusoidal": sinusoidal, "long_table": long_table}
    for name, value in answers.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _fail(f"{name} must be a number, got {type(value).__name__}")
    if gpt2_medium != 1024 * 1024:
        if gpt2_medium == 1024 + 1024:
            return _fail("gpt2_medium: added rows and width; a table has rows x width entries")
        if gpt2_medium == 1024:
            return _fail("gpt2_medium: that is the number of rows; each row has 1024 entries")
        return _fail(f"gpt2_medium: {gpt2_medium:,} is not rows x width")
    if sinusoidal != 0:
        if sinusoidal == 1024 * 1024:
            return _fail(
                "sinusoidal: the table has 1,048,576 entries, but they are computed by a "
                "formula, not trained: 0 parameters"
            )
        return _fail(f"sinusoidal: {sinusoidal:,}; a fixed table has no trainable parameters")
    if long_table != 32_768 * 4096:
        if long_table == 32_768:
            return _fail("long_table: that is the number of rows; multiply by the width 4096")
        if long_table == 32_768 * 1024:
            return _fail("long_table: used GPT-2 medium's width 1024; the width here is 4096")
        return _fail(f"long_table: {long_table:,} is not 32 768 x 4096")
    return CheckResult(True, "1,048,576, 0 and 134,217,728 parameters")


def check_adamw_decay(fn: Callable) -> CheckResult:
    """Check ``fn(lr, weight_decay, steps)``: the factor by which AdamW shrinks a row that
    never receives a gradient, ``(1 - lr * weight_decay) ** steps``."""
    cases = [(0.1, 0.5, 10), (1e-2, 0.1, 200), (3e-3, 0.01, 1)]
    for lr, wd, steps in cases:
        try:  # plain floats: a float32 tensor would blur the variants below
            got = float(fn(lr, wd, steps))
        except Exception as exc:  # noqa: BLE001 - report any failure to the reader
            return _fail(f"fn({lr}, {wd}, {steps}) raised {type(exc).__name__}: {exc}")
        want = (1 - lr * wd) ** steps
        if abs(got - want) <= 1e-7:
            continue
        case = f"[lr={lr}, weight_decay={wd}, steps={steps}] "
        variants = [
            (
                "the rows do not stay put: AdamW's decay acts on every parameter, gradient or not",
                1.0,
            ),
            (
                "linear in the steps; the decay multiplies by (1 - lr*wd) at every step, so "
                "the factors compound",
                1 - lr * wd * steps,
            ),
            (
                "forgot the learning rate: AdamW multiplies by 1 - lr*wd, not 1 - wd",
                (1 - wd) ** steps,
            ),
            (
                "exp(-lr*wd*steps) is only the small-step approximation of (1 - lr*wd)**steps",
                torch.exp(torch.tensor(-lr * wd * steps)).item(),
            ),
            (
                "off by one step: the decay is applied at each of the `steps` steps",
                (1 - lr * wd) ** (steps - 1),
            ),
        ]
        for message, value in variants:
            if abs(got - value) <= 1e-7:
                return _fail(case + message)
        return _fail(case + f"got {got:.6g}, expected {want:.6g}")
    return CheckResult(True, "(1 - lr * weight_decay) ** steps on three settings")


# ------------------------------------------------------------ chapter 2: the module


def check_sinusoidal_module(cls: Callable, *, seed: int = 0) -> CheckResult:
    """Check a sinusoidal-encoding ``nn.Module`` class built as in chapter 2.

    ``cls(d_model, max_len=..., dropout=...)`` must give a module whose ``forward(x)``,
    for ``x`` of shape ``(batch, seq, d_model)``, returns ``dropout(x + P[:seq])`` with the
    interleaved table ``P`` of :func:`reference_table`; the table is a non-persistent
    buffer (not a parameter, not in the ``state_dict``); a sequence longer than
    ``max_len`` raises an error that names ``max_len``; ``.to(dtype)`` moves the table.
    """
    gen = torch.Generator().manual_seed(seed)
    d_model, max_len = 16, 32
    try:
        module = cls(d_model, max_len=max_len, dropout=0.0)
    except Exception as exc:  # noqa: BLE001 - report any failure to the reader
        return _fail(f"cls(16, max_len=32, dropout=0.0) raised {type(exc).__name__}: {exc}")
    if not isinstance(module, torch.nn.Module):
        return _fail("cls(...) must return a torch.nn.Module")
    if any(True for _ in module.parameters()):
        return _fail(
            "the module has parameters: register the table with register_buffer, so the "
            "optimiser does not train it"
        )
    tables = [b for b in module.buffers() if b.numel() == max_len * d_model]
    if not tables:
        plain = [
            name
            for name, value in vars(module).items()
            if isinstance(value, torch.Tensor) and value.numel() == max_len * d_model
        ]
        if plain:  # the table exists, but as an attribute that .to() leaves behind
            return _fail(
                f"no buffer with the table: self.{plain[0]} is a plain tensor attribute, "
                "which .to(device) and .to(dtype) leave behind; store it with "
                "register_buffer(..., persistent=False)"
            )
        return _fail(f"no buffer with the {max_len} x {d_model} table: build it once in __init__")
    if any(v.numel() == max_len * d_model for v in module.state_dict().values()):
        return _fail(
            "the table is a persistent buffer, saved in every state_dict: use "
            "register_buffer(..., persistent=False); it is recomputed from the formula, and "
            "a checkpoint would not load into a module with another max_len"
        )
    module.eval()
    x = torch.randn(2, 10, d_model, generator=gen, dtype=torch.float64).float()
    try:
        with torch.no_grad():
            got = module(x)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"forward on a (2, 10, 16) input raised {type(exc).__name__}: {exc}")
    want = x.double() + reference_table(10, d_model)
    if tuple(got.shape) != (2, 10, d_model):
        return _fail(
            f"output shape {tuple(got.shape)}, expected (2, 10, 16): slice P to the sequence"
        )
    got = got.double()
    if not _close(got, want):
        if _close(got, x.double() * d_model**0.5 + reference_table(10, d_model)):
            return _fail("scaled x by sqrt(d_model); this exercise adds P to x unscaled")
        for name, kwargs in [
            ("sine and cosine swapped", {"swapped": True}),
            ("concatenated layout instead of interleaved", {"layout": "concat"}),
            ("exponent uses the column index j instead of the pair index", {"exponent": "j/d"}),
            ("exponent i/d instead of 2i/d", {"exponent": "i/d"}),
            ("positions start at 1", {"offset": 1}),
        ]:
            if _close(got, x.double() + reference_table(10, d_model, **kwargs)):
                return _fail(name)
        return _fail(_first_wrong(got - x.double(), want - x.double(), name="output - x"))
    long_x = torch.zeros(1, max_len + 1, d_model)
    try:
        with torch.no_grad():
            module(long_x)
    except Exception as exc:  # noqa: BLE001
        if "max_len" not in str(exc):
            return _fail(
                f"a sequence of {max_len + 1} > max_len raised {type(exc).__name__} "
                f"({exc}); the message should name max_len and the limit"
            )
    else:
        return _fail(
            f"a sequence of {max_len + 1} > max_len={max_len} gave an output: raise an error "
            "naming max_len instead of a silently wrong or broadcast result"
        )
    try:
        out64 = module.to(torch.float64)(x.double())
    except Exception as exc:  # noqa: BLE001
        return _fail(f"after .to(torch.float64), forward raised {type(exc).__name__}: {exc}")
    if out64.dtype != torch.float64:
        return _fail("after .to(torch.float64) the output is not float64: the table did not move")
    drop = cls(d_model, max_len=max_len, dropout=0.5)
    drop.train()
    ones = torch.ones(4, 10, d_model)
    torch.manual_seed(seed)
    trained = drop(ones)
    if _close(trained.double(), ones.double() + reference_table(10, d_model)):
        return _fail("dropout=0.5 changes nothing in training mode: apply nn.Dropout to x + P")
    drop.eval()
    if not _close(drop(ones).double(), ones.double() + reference_table(10, d_model)):
        return _fail("in eval mode the output must be x + P exactly: dropout only in training")
    return CheckResult(
        True,
        "x + P[:seq], non-persistent buffer, error past max_len, follows .to(), dropout "
        "in training only",
    )


# ------------------------------------------------------ chapter 2: by-hand exercises


def check_table_entries(omegas, p_10_2, p_10_3, *, tol: float = 5e-3) -> CheckResult:
    """Check the by-hand exercise: ``omegas`` (the three frequencies for d_model = 6,
    base 10000) and the entries ``P[10, 2]`` and ``P[10, 3]``, each to within ``tol``."""
    want_w = [10_000.0 ** (-2 * i / 6) for i in range(3)]
    try:
        got_w = [float(w) for w in omegas]
    except (TypeError, ValueError):
        return _fail("omegas must be three numbers, omega_0, omega_1, omega_2")
    if len(got_w) != 3:
        return _fail(f"omegas must hold 3 frequencies (d_model/2 = 3 pairs), got {len(got_w)}")

    def close(a, b):
        return abs(a - b) <= tol * max(1.0, abs(b))

    if not all(close(g, w) for g, w in zip(got_w, want_w, strict=True)):
        by_i_over_d = [10_000.0 ** (-i / 6) for i in range(3)]
        if all(close(g, w) for g, w in zip(got_w, by_i_over_d, strict=True)):
            return _fail("omegas use the exponent i/d; the exponent is 2i/d with the pair index i")
        if all(close(g, 1 / w) for g, w in zip(got_w, want_w, strict=True)):
            return _fail("omegas are 10000**(+2i/d); the frequency is 10000**(-2i/d)")
        return _fail(f"omegas {got_w} differ from {[round(w, 5) for w in want_w]}")
    angle = 10 * want_w[1]  # columns 2 and 3 are pair i = 1
    right = (math.sin(angle), math.cos(angle))
    got = (float(p_10_2), float(p_10_3))
    if all(close(g, r) for g, r in zip(got, right, strict=True)):
        return CheckResult(True, "omegas and P[10, 2], P[10, 3] = sin, cos of 10 * omega_1")
    if all(close(g, r) for g, r in zip(got, right[::-1], strict=True)):
        return _fail("sine and cosine swapped: even column 2 holds the sine, column 3 the cosine")
    column_exp = (math.sin(10 * 10_000.0 ** (-2 / 6)), math.cos(10 * 10_000.0 ** (-3 / 6)))
    if all(close(g, r) for g, r in zip(got, column_exp, strict=True)):
        return _fail(
            "column 3 used the exponent 3/d (its column index); both columns of pair 1 use 2/d"
        )
    degrees = (math.sin(math.radians(angle)), math.cos(math.radians(angle)))
    if all(close(g, r) for g, r in zip(got, degrees, strict=True)):
        return _fail("the calculator was in degrees; the angle 10 * omega_1 is in radians")
    pair2 = (math.sin(10 * want_w[2]), math.cos(10 * want_w[2]))
    if all(close(g, r) for g, r in zip(got, pair2, strict=True)):
        return _fail("used pair i = 2; columns 2 and 3 are pair i = 1 (i = j // 2)")
    return _fail(f"P[10, 2], P[10, 3] = {got}, expected about ({right[0]:.3f}, {right[1]:.3f})")


def check_alias_position(position) -> CheckResult:
    """Check the aliasing exercise: the position ``0 < p < 50`` whose single-pair encoding
    ``(sin p, cos p)`` is within 0.02 of position 0's."""
    try:
        p = int(position)
    except (TypeError, ValueError):
        return _fail("position must be an integer between 1 and 49")
    if p != position or not 0 < p < 50:
        return _fail(f"position must be an integer between 1 and 49, got {position!r}")
    distance = 2 * abs(math.sin(p / 2))  # |(sin p, cos p) - (0, 1)|
    if p == 44:
        return CheckResult(True, f"44 = 7 * 2pi + 0.018: distance {distance:.4f}")
    nearest = round(p / (2 * math.pi))
    return _fail(
        f"position {p} is at distance {distance:.3f} from position 0 (it is "
        f"{p - 2 * math.pi * nearest:+.2f} rad from {nearest} full turns); look for p "
        "within 0.02 of a multiple of 2pi"
    )
