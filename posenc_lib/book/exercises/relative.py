"""Checkers for the exercises of the relative-position chapters (relative biases and ALiBi).

Every checker calls the reader's function on many inputs, compares the answer with a
reference written here independently of the library (pure Python or float64), and, when
the answer is wrong, tries the usual mistakes (sign convention ``i - j`` instead of
``j - i``, off-by-one in T5's ``max_exact``, the wrong slope rule for head counts that are
not powers of two, a missing causal mask, ...) to say precisely what went wrong. The
result is a :class:`~posenc_lib.book.exercises.absolute.CheckResult`: truthy when the answer is
right, with a message either way.

Conventions (those of the library): the relative position of key ``j`` seen from query
``i`` is ``j - i`` (key minus query); bias tensors are ``(heads, q_len, k_len)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .absolute import CheckResult, _fail

__all__ = [
    "check_alibi_slopes",
    "check_alibi_bias",
    "check_t5_bucket",
    "check_shaw_indices",
    "check_rel_shift",
    "check_causal_bucket_answers",
    "check_alibi_range_answers",
    "reference_rel_shift",
    "reference_alibi_slopes",
    "reference_t5_bucket",
]

_ATOL = 1e-6


def _as_tensor(out, what: str):
    """(float64 or long tensor, None) or (None, failure)."""
    try:
        return torch.as_tensor(out.detach() if torch.is_tensor(out) else out), None
    except Exception:  # noqa: BLE001  (anything the reader returns is reported)
        return None, _fail(f"{what} returned a {type(out).__name__}; return a tensor")


def _run(fn: Callable, args: tuple, kwargs: dict, what: str):
    try:
        out = fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001
        return None, _fail(f"{what} raised {type(err).__name__}: {err}")
    return _as_tensor(out, what)


# ----------------------------------------------------------------------------- ALiBi slopes


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def reference_alibi_slopes(num_heads: int, *, rule: str = "reference") -> list[float]:
    """ALiBi slopes in float64, right (``rule="reference"``) or with a usual mistake.

    The right rule (Press et al., 2022, and their code) with ``p = 2^floor(log2 n)``:
    ``2^(-8h/p)`` for ``h = 1..p``, then ``2^(-4(2h - 1)/p)`` for ``h = 1..n - p`` (the
    odd-numbered slopes of the sequence for ``2p`` heads). Mistakes: ``"naive"``
    (``2^(-8h/n)`` for every ``n``), ``"truncate"`` (the first ``n`` slopes for ``2p``
    heads), ``"consecutive"`` (the extra slopes taken consecutively, not every other one),
    ``"from_zero"`` (``h = 0..n-1``), ``"sorted"`` (right values in decreasing order).
    """
    p = 2 ** int(math.floor(math.log2(num_heads)))
    if rule == "naive":
        return [2.0 ** (-8.0 * h / num_heads) for h in range(1, num_heads + 1)]
    if rule == "from_zero":
        return [2.0 ** (-8.0 * h / num_heads) for h in range(num_heads)]
    if rule == "truncate":
        return (
            [2.0 ** (-8.0 * h / (2 * p)) for h in range(1, num_heads + 1)]
            if p < num_heads
            else reference_alibi_slopes(num_heads)
        )
    base = [2.0 ** (-8.0 * h / p) for h in range(1, p + 1)]
    extra_count = num_heads - p
    if rule == "consecutive":
        extra = [2.0 ** (-8.0 * h / (2 * p)) for h in range(1, extra_count + 1)]
    else:
        extra = [2.0 ** (-4.0 * (2 * h - 1) / p) for h in range(1, extra_count + 1)]
    slopes = base + extra
    return sorted(slopes, reverse=True) if rule == "sorted" else slopes


_SLOPE_MISTAKES = {
    "naive": "you used 2^(-8h/n) for a head count n that is not a power of two; the "
    "reference rule takes the slopes of the closest smaller power of two p, then every "
    "other slope (1st, 3rd, ...) of the sequence for 2p heads",
    "truncate": "you took the first n slopes of the sequence for the next power of two; "
    "the reference rule keeps all slopes of the smaller power of two p first, then adds "
    "every other slope of the sequence for 2p heads",
    "consecutive": "the extra slopes (after the first p = 2^floor(log2 n)) are consecutive "
    "slopes of the 2p-head sequence; take every other one (2p-head slopes 1, 3, 5, ...)",
    "from_zero": "h starts at 0, so head 1 gets slope 2^0 = 1; the heads are h = 1..n "
    "(8 heads: 1/2, 1/4, ..., 1/256)",
    "sorted": "right slopes, wrong order: you sorted them. The reference order keeps the "
    "2^floor(log2 n) slopes of the smaller power of two first; the extra slopes follow",
}


def _diagnose_slopes(got: torch.Tensor, n: int) -> str:
    want = torch.tensor(reference_alibi_slopes(n), dtype=torch.float64)
    if torch.allclose(got, -want, atol=_ATOL, rtol=1e-6):
        return "the slopes are negative; m_h > 0 and the minus sign lives in the bias -m_h (i - j)"
    if torch.allclose(got, want.flip(0), atol=_ATOL, rtol=1e-6):
        return (
            "the order is reversed: head 1 gets the steepest slope (the largest m_h, "
            "2^(-8/n) for n a power of two)"
        )
    for rule in ("naive", "truncate", "consecutive", "from_zero", "sorted"):
        variant = torch.tensor(reference_alibi_slopes(n, rule=rule), dtype=torch.float64)
        if not torch.allclose(variant, want, atol=_ATOL, rtol=1e-6) and torch.allclose(
            got, variant, atol=_ATOL, rtol=1e-6
        ):
            return _SLOPE_MISTAKES[rule]
    bad = ((got - want).abs() > _ATOL + 1e-6 * want.abs()).nonzero().flatten()
    h = int(bad[0])
    return (
        f"head {h + 1} (index {h}) has slope {got[h].item():.6g}, expected "
        f"{want[h].item():.6g} ({len(bad)} of {n} slopes are wrong)"
    )


def check_alibi_slopes(
    fn: Callable,
    *,
    head_counts: Sequence[int] = (1, 2, 4, 8, 16, 32, 3, 5, 6, 7, 12, 20, 24, 40, 96),
) -> CheckResult:
    """Check ``fn(num_heads)`` returns the ALiBi slopes ``(m_1, ..., m_n)``.

    Args:
        fn: the reader's function, returning a 1-D tensor (or list) of ``num_heads`` floats.
        head_counts: the head counts to try, in order.

    Returns:
        A :class:`~posenc_lib.book.exercises.absolute.CheckResult` naming the first mistake found.
    """
    for n in head_counts:
        got, failure = _run(fn, (n,), {}, f"fn({n})")
        if failure is not None:
            return failure
        case = f"[num_heads={n}] "
        got = got.to(torch.float64)
        if tuple(got.shape) != (n,):
            return _fail(case + f"shape {tuple(got.shape)}, expected ({n},): one slope per head")
        if not torch.isfinite(got).all():
            return _fail(case + "the slopes contain nan or inf")
        want = torch.tensor(reference_alibi_slopes(n), dtype=torch.float64)
        if torch.allclose(got, want, atol=_ATOL, rtol=1e-6):
            continue
        return _fail(case + _diagnose_slopes(got, n))
    return CheckResult(
        True, f"your slopes match the reference rule for the head counts {tuple(head_counts)}"
    )


# ------------------------------------------------------------------------------ ALiBi bias


def check_alibi_bias(
    fn: Callable,
    *,
    cases: Sequence[tuple[int, int]] = ((8, 6), (1, 4), (12, 9), (3, 5), (16, 1)),
) -> CheckResult:
    """Check ``fn(num_heads, seq_len)`` returns the causal ALiBi bias.

    Expected: ``B[h, i, j] = -m_h (i - j)`` for ``j <= i`` and ``-inf`` above the diagonal
    (future keys), shape ``(num_heads, seq_len, seq_len)``. A very negative finite number
    (``<= -1e4``) above the diagonal is accepted with a note.

    Returns:
        A :class:`~posenc_lib.book.exercises.absolute.CheckResult` naming the first mistake found.
    """
    finite_mask_used = False
    for n, s in cases:
        got, failure = _run(fn, (n, s), {}, f"fn({n}, {s})")
        if failure is not None:
            return failure
        case = f"[num_heads={n}, seq_len={s}] "
        got = got.to(torch.float64)
        if tuple(got.shape) != (n, s, s):
            hint = ": put the heads first" if tuple(got.shape) == (s, s, n) else ""
            return _fail(
                case + f"shape {tuple(got.shape)}, expected ({n}, {s}, {s}) = "
                f"(heads, queries, keys){hint}"
            )
        if torch.isnan(got).any():
            return _fail(case + "the bias contains nan")
        m = torch.tensor(reference_alibi_slopes(n), dtype=torch.float64)[:, None, None]
        i = torch.arange(s, dtype=torch.float64)[:, None]
        j = torch.arange(s, dtype=torch.float64)[None, :]
        past = (j <= i).expand(n, s, s)
        want_low = (-m * (i - j)).expand(n, s, s)
        low_ok = torch.allclose(got[past], want_low[past], atol=1e-5, rtol=1e-5)
        upper = got[~past]
        if not low_ok:
            if torch.allclose(got[past], -want_low[past], atol=1e-5, rtol=1e-5):
                return _fail(
                    case + "the sign is wrong: the bias is -m_h (i - j) <= 0, a "
                    "penalty that grows with the distance, not a reward"
                )
            flipped = got.transpose(1, 2)
            if torch.allclose(flipped[past], want_low[past], atol=1e-5, rtol=1e-5):
                return _fail(
                    case + "the matrix is transposed: rows are queries i, columns "
                    "keys j, and the visible keys j <= i are on and below the "
                    "diagonal"
                )
            if not torch.allclose(
                got.diagonal(dim1=1, dim2=2), torch.zeros(n, s, dtype=torch.float64), atol=1e-5
            ):
                return _fail(case + "the diagonal (i = j, distance 0) must be 0")
            if s > 1:
                slopes = -got[:, 1, 0]
                if torch.allclose(
                    got[past],
                    (-slopes[:, None, None] * (i - j)).expand(n, s, s)[past],
                    atol=1e-5,
                    rtol=1e-5,
                ):
                    return _fail(
                        case + "the bias is linear in i - j but the slopes are "
                        "wrong: " + _diagnose_slopes(slopes, n)
                    )
            bad = ((got - want_low).abs() > 1e-5) & past
            h, r, c = (int(x) for x in bad.nonzero()[0])
            return _fail(
                case + f"first wrong entry B[{h}, {r}, {c}] = {got[h, r, c].item():.4f}, "
                f"expected {want_low[h, r, c].item():.4f}"
            )
        if upper.numel():
            if torch.isinf(upper).all() and (upper < 0).all():
                continue
            if (upper <= -1e4).all():
                finite_mask_used = True
                continue
            want_sym = (-m * (i - j).abs()).expand(n, s, s)
            if torch.allclose(got, want_sym, atol=1e-5, rtol=1e-5):
                return _fail(
                    case + "this is the symmetric bias -m_h |i - j| of the "
                    "bidirectional variant; the causal bias also masks future keys: "
                    "-inf above the diagonal"
                )
            return _fail(
                case + "entries above the diagonal (future keys j > i) must be "
                "-inf: in causal ALiBi the bias is also the causal mask"
            )
    note = (
        " (you mask with a large finite negative number; -inf is exact, and a finite "
        "value can overflow in float16)"
        if finite_mask_used
        else ""
    )
    return CheckResult(True, f"your causal ALiBi bias is right on {len(cases)} cases" + note)


# ------------------------------------------------------------------------------ T5 buckets


def reference_t5_bucket(
    rel: torch.Tensor,
    *,
    bidirectional: bool,
    num_buckets: int,
    max_distance: int,
    dtype: torch.dtype = torch.float64,
    mistake: str | None = None,
) -> torch.Tensor:
    """T5 bucket ids of relative positions ``rel = j - i``, right or with one mistake.

    Written with explicit branches, in ``dtype`` (float64 by default; float32 reproduces
    the reference code bit for bit). ``mistake`` is one of ``None``, ``"sign"`` (uses
    ``i - j``), ``"max_exact_plus1"`` / ``"max_exact_minus1"`` (``max_exact`` off by one;
    note that ``r <= max_exact`` instead of ``r < max_exact`` is *not* a mistake: both
    give bucket ``max_exact`` at ``r = max_exact``), ``"no_halving"``
    (bidirectional mode keeps all buckets per direction), ``"max_exact_full"``
    (``max_exact = num_buckets // 2`` before halving), ``"no_clamp"``, ``"round"``
    (rounds instead of flooring), ``"causal_abs"`` (unidirectional mode uses ``|j - i|``).
    """
    rel = rel.long()
    if mistake == "sign":
        rel = -rel
    n = num_buckets
    max_exact_full = n // 2
    offset = torch.zeros_like(rel)
    if bidirectional:
        if mistake != "no_halving":
            n = n // 2
        offset = torch.where(rel > 0, torch.full_like(rel, n), offset)
        dist = rel.abs()
    elif mistake == "causal_abs":
        dist = rel.abs()
    else:
        dist = torch.where(rel < 0, -rel, torch.zeros_like(rel))
    max_exact = max_exact_full if mistake == "max_exact_full" else n // 2
    max_exact += {"max_exact_plus1": 1, "max_exact_minus1": -1}.get(mistake, 0)
    ratio = dist.clamp(min=max(max_exact, 1)).to(dtype) / max(max_exact, 1)
    scale = (n - max_exact) / math.log(max_distance / max_exact)
    value = max_exact + torch.log(ratio) * torch.tensor(scale, dtype=dtype)
    large = (value.round() if mistake == "round" else value.floor()).long()
    if mistake != "no_clamp":
        large = large.clamp(max=n - 1)
    small = dist < max_exact
    return offset + torch.where(small, dist, large)


_T5_MISTAKES = {
    "sign": "sign convention: the input is j - i (key minus query). Keys before the query "
    "have negative relative positions; in bidirectional mode the keys AFTER the query "
    "(j - i > 0) get the upper half of the buckets, and in causal mode the past keys are the "
    "ones told apart (future keys all go to bucket 0)",
    "max_exact_plus1": "off by one in max_exact: it is n // 2 with n the buckets of one "
    "direction (8 for T5's 32 bidirectional buckets), so distances 0..max_exact - 1 get one "
    "bucket each; yours is one larger",
    "max_exact_minus1": "off by one in max_exact: it is n // 2 with n the buckets of one "
    "direction (8 for T5's 32 bidirectional buckets), so distances 0..max_exact - 1 get one "
    "bucket each; yours is one smaller",
    "no_halving": "in bidirectional mode each direction gets num_buckets // 2 buckets; "
    "halve num_buckets before computing max_exact and the logarithmic part",
    "max_exact_full": "max_exact must be computed after halving num_buckets in "
    "bidirectional mode (max_exact = (num_buckets // 2) // 2, i.e. 8 for T5's 32 buckets)",
    "no_clamp": "distances beyond max_distance must all fall in the last bucket of their "
    "direction: clamp the logarithmic bucket to n - 1",
    "round": "the logarithmic bucket is floored (truncated toward zero), not rounded",
    "causal_abs": "in causal (unidirectional) mode only the past is told apart: r = "
    "max(i - j, 0), so every future key (j > i) goes to bucket 0; you used |j - i|",
}


def _t5_matches(got: torch.Tensor, rel: torch.Tensor, kw: dict, mistake) -> bool:
    ref64 = reference_t5_bucket(rel, **kw, mistake=mistake)
    ref32 = reference_t5_bucket(rel, **kw, dtype=torch.float32, mistake=mistake)
    return bool(((got == ref64) | (got == ref32)).all())


def check_t5_bucket(
    fn: Callable,
    *,
    configs: Sequence[tuple[bool, int, int]] = (
        (True, 32, 128),
        (False, 32, 128),
        (True, 16, 64),
        (False, 8, 20),
        (True, 64, 300),
    ),
    max_rel: int = 400,
) -> CheckResult:
    """Check ``fn(rel, bidirectional=..., num_buckets=..., max_distance=...)`` returns T5
    bucket ids for every relative position ``rel = j - i`` in ``[-max_rel, max_rel]``.

    The float rounding of the logarithm may put a distance that sits exactly on a bucket
    boundary on either side; both answers (float32 and float64 arithmetic) are accepted.

    Args:
        fn: the reader's function; ``rel`` is a 1-D long tensor.
        configs: ``(bidirectional, num_buckets, max_distance)`` triples to try.
        max_rel: the largest ``|j - i|`` tried.

    Returns:
        A :class:`~posenc_lib.book.exercises.absolute.CheckResult` naming the first mistake found.
    """
    rel = torch.arange(-max_rel, max_rel + 1)
    for bidirectional, num_buckets, max_distance in configs:
        kw = {
            "bidirectional": bidirectional,
            "num_buckets": num_buckets,
            "max_distance": max_distance,
        }
        shown = ", ".join(f"{k}={v}" for k, v in kw.items())
        got, failure = _run(fn, (rel.clone(),), kw, f"fn(rel, {shown})")
        if failure is not None:
            return failure
        case = f"[{shown}] "
        if tuple(got.shape) != tuple(rel.shape):
            return _fail(
                case + f"shape {tuple(got.shape)}, expected {tuple(rel.shape)}: one "
                "bucket per relative position"
            )
        if got.is_floating_point():
            if not torch.equal(got, got.round()):
                return _fail(
                    case + "bucket ids must be integers (floor the logarithmic part "
                    "and return a long tensor)"
                )
        got = got.long()
        if _t5_matches(got, rel, kw, None):
            continue
        for mistake in _T5_MISTAKES:
            if _t5_matches(got, rel, kw, mistake):
                return _fail(case + _T5_MISTAKES[mistake])
        if got.min() < 0 or got.max() >= num_buckets:
            return _fail(
                case + f"bucket ids must lie in [0, {num_buckets}), got values "
                f"from {got.min().item()} to {got.max().item()}"
            )
        want = reference_t5_bucket(rel, **kw)
        want32 = reference_t5_bucket(rel, **kw, dtype=torch.float32)
        bad = ((got != want) & (got != want32)).nonzero().flatten()
        first = int(bad[0])
        return _fail(
            case + f"relative position j - i = {rel[first].item()} gets bucket "
            f"{got[first].item()}, expected {want[first].item()} ({len(bad)} of "
            f"{rel.numel()} positions are wrong)"
        )
    return CheckResult(
        True,
        f"your buckets match for every j - i in [-{max_rel}, {max_rel}] "
        f"in {len(configs)} configurations",
    )


# ---------------------------------------------------------------------------- Shaw indices


def check_shaw_indices(
    fn: Callable,
    *,
    cases: Sequence[tuple[int, int, int]] = (
        (4, 7, 3),
        (5, 5, 2),
        (6, 3, 1),
        (9, 9, 0),
        (12, 12, 20),
    ),
) -> CheckResult:
    """Check ``fn(q_len, k_len, max_distance)`` returns Shaw's table rows
    ``clip(j - i, -k, k) + k`` as a ``(q_len, k_len)`` integer tensor.

    Returns:
        A :class:`~posenc_lib.book.exercises.absolute.CheckResult` naming the first mistake found.
    """
    for q_len, k_len, k in cases:
        got, failure = _run(fn, (q_len, k_len, k), {}, f"fn({q_len}, {k_len}, {k})")
        if failure is not None:
            return failure
        case = f"[q_len={q_len}, k_len={k_len}, max_distance={k}] "
        if tuple(got.shape) != (q_len, k_len):
            hint = (
                ": the matrix is transposed (rows are queries)"
                if tuple(got.shape) == (k_len, q_len)
                else ""
            )
            return _fail(case + f"shape {tuple(got.shape)}, expected ({q_len}, {k_len}){hint}")
        if got.is_floating_point() or got.dtype == torch.bool:
            return _fail(case + f"dtype {got.dtype}: table rows are integers (torch.long)")
        rel = [[j - i for j in range(k_len)] for i in range(q_len)]
        want = torch.tensor([[min(max(r, -k), k) + k for r in row] for row in rel]).view(
            q_len, k_len
        )
        if torch.equal(got.long(), want):
            continue
        got = got.long()
        relt = torch.tensor(rel).view(q_len, k_len)
        variants = {
            "sign convention: row = clip(j - i, -k, k) + k with j - i = key minus query; you "
            "used i - j (the past would read the future's vectors)"
            + (
                ", or transposed the matrix (rows are queries i, columns keys j)"
                if q_len == k_len
                else ""
            ): (-relt).clamp(-k, k) + k,
            "the indices are not shifted: add k so that they run over the 2k + 1 rows "
            "0..2k of the table (negative indices wrap around in Python)": relt.clamp(-k, k),
            "no clipping: every distance beyond k must share the edge rows 0 and 2k": relt + k,
            "off by one: clip at k, not k - 1 (the table has 2k + 1 rows, -k..k)": relt.clamp(
                -k + 1, k - 1
            )
            + k
            if k >= 1
            else None,
            "off by one: clip at k, not k + 1 (the table has 2k + 1 rows, -k..k)": relt.clamp(
                -k - 1, k + 1
            )
            + k,
        }
        for message, variant in variants.items():
            if variant is not None and torch.equal(got, variant):
                return _fail(case + message)
        if got.min() < 0 or got.max() > 2 * k:
            return _fail(
                case + f"indices must lie in [0, {2 * k}], got {got.min().item()}.."
                f"{got.max().item()}"
            )
        r, c = (int(x) for x in (got != want).nonzero()[0])
        return _fail(
            case + f"entry [{r}, {c}] (j - i = {c - r}) is {got[r, c].item()}, "
            f"expected {want[r, c].item()}"
        )
    return CheckResult(True, f"your Shaw indices are right on {len(cases)} cases")


# ----------------------------------------------------------------------------- rel_shift


def reference_rel_shift(x: torch.Tensor, *, variant: str = "right") -> torch.Tensor:
    """Transformer-XL's relative shift on the last two dims, right or with a usual mistake.

    Input column ``c`` holds distance ``k_len - 1 - c`` (Transformer-XL orders ``R`` from
    the farthest distance down to 0); the output's entry ``(i, j)`` holds distance
    ``i + k_len - q_len - j`` wherever ``j <= i + k_len - q_len`` (the causal part).

    Variants: ``"right"`` (pad a zero column on the left, view as ``(k_len + 1, q_len)``,
    drop the first row), ``"pad_right"`` (zero column on the right), ``"drop_last"``
    (last row dropped), ``"ascending"`` (column ``c`` taken as distance ``c``).
    """
    *lead, q_len, k_len = x.shape
    if variant == "ascending":
        i = torch.arange(q_len)[:, None]
        j = torch.arange(k_len)[None, :]
        col = (i + k_len - q_len - j).clamp(0, k_len - 1)
        return x.gather(-1, col.expand(*lead, q_len, k_len))
    zero = x.new_zeros(*lead, q_len, 1)
    padded = torch.cat((x, zero) if variant == "pad_right" else (zero, x), dim=-1)
    padded = padded.reshape(*lead, k_len + 1, q_len)
    kept = padded[..., :-1, :] if variant == "drop_last" else padded[..., 1:, :]
    return kept.reshape(*lead, q_len, k_len)


_REL_SHIFT_MISTAKES = {
    "pad_right": "the zero column goes on the left (before column 0), not on the right",
    "drop_last": "after the view as (k_len + 1, q_len), drop the first row, not the last",
    "ascending": "you treated column c as distance c; in Transformer-XL column c holds "
    "distance k_len - 1 - c (R runs from the farthest distance down to 0), which is what "
    "makes the pad-view-slice trick work",
}


def check_rel_shift(fn: Callable) -> CheckResult:
    """Check the reader's ``fn(x)``, Transformer-XL's relative shift on the last two dims.

    Only the causal part ``j <= i + k_len - q_len`` is compared (above it the trick leaves
    values that the mask hides). Cases: square and with memory (``k_len > q_len``), with
    leading batch and head dimensions.
    """
    gen = torch.Generator().manual_seed(0)
    for shape in ((5, 5), (2, 3, 4, 4), (1, 2, 3, 7), (6, 9)):
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        case = f"[x {tuple(shape)}] "
        got, failure = _run(fn, (x.clone(),), {}, "fn" + case.rstrip())
        if failure is not None:
            return failure
        if tuple(got.shape) != tuple(shape):
            return _fail(
                case + f"shape {tuple(got.shape)}, expected x's shape {tuple(shape)}: the "
                "view after padding is (k_len + 1, q_len); drop one row and view back"
            )
        q_len, k_len = shape[-2:]
        causal = torch.ones(q_len, k_len, dtype=torch.bool).tril(k_len - q_len)
        want = reference_rel_shift(x)
        if torch.allclose(got[..., causal], want[..., causal], atol=_ATOL, rtol=0):
            continue
        for variant, message in _REL_SHIFT_MISTAKES.items():
            other = reference_rel_shift(x, variant=variant)
            if torch.allclose(got[..., causal], other[..., causal], atol=_ATOL, rtol=0):
                return _fail(case + message)
        if torch.allclose(got, x, atol=_ATOL, rtol=0):
            return _fail(case + "the output equals the input: nothing was shifted")
        bad = ((got - want).abs() > _ATOL) & causal
        i, j = (int(v) for v in bad.nonzero()[0][-2:])
        return _fail(
            case + f"entry ({i}, {j}) should hold distance {i + k_len - q_len - j}, the "
            f"input's column {j + q_len - 1 - i}; it does not"
        )
    return CheckResult(True, "your rel_shift matches Transformer-XL's on the causal part")


# --------------------------------------------------------------- numeric answers


def check_causal_bucket_answers(bucket_of_20: int, buckets_used: int, exact: int) -> CheckResult:
    """Answers of the causal T5 bucket exercise (32 buckets, ``max_distance`` 128).

    Args:
        bucket_of_20: the bucket of a key 20 tokens in the past (``j - i = -20``).
        buckets_used: how many distinct buckets a decoder can use.
        exact: how many of them hold a single distance.
    """
    want = int(
        reference_t5_bucket(
            torch.tensor([-20]), bidirectional=False, num_buckets=32, max_distance=128
        )[0].item()
    )
    problems = []
    if int(bucket_of_20) != want:
        if int(bucket_of_20) == 10:
            problems.append(
                "bucket 10 is the bidirectional answer (n = 16, n_exact = 8); a decoder "
                "keeps all n = 32 buckets for the past, so n_exact = 16"
            )
        elif int(bucket_of_20) == 20:
            problems.append("20 would be an exact bucket, but only distances 0 .. 15 are exact")
        else:
            problems.append(
                f"the bucket of r = 20 is 16 + floor(log(20/16) / log(128/16) * 16) = {want}, "
                f"not {bucket_of_20}"
            )
    if int(buckets_used) != 32:
        hint = (
            "31 is the bidirectional count (bucket 16 is never used there); in causal mode "
            "every bucket 0 .. 31 occurs"
            if int(buckets_used) == 31
            else "in causal mode every bucket 0 .. 31 occurs"
        )
        problems.append(hint)
    if int(exact) != 16:
        problems.append(
            "n_exact = n / 2 with n = 32 in causal mode: 16 exact buckets"
            + (" (8 is the bidirectional value)" if int(exact) == 8 else "")
        )
    if problems:
        return _fail("; ".join(problems))
    return CheckResult(True, f"bucket {want}, 32 buckets used, 16 of them exact")


def check_alibi_range_answers(first_head: int, last_range: float) -> CheckResult:
    """Answers of the 16-head ALiBi range exercise.

    Args:
        first_head: the smallest ``h`` (1-based) whose bias at distance 100 is above ``-1``.
        last_range: ``d_16(ln 100)``, the distance at which the last head reaches ``-ln 100``.
    """
    slopes = reference_alibi_slopes(16)
    want_head = next(h + 1 for h, m in enumerate(slopes) if -100 * m > -1)
    want_range = math.log(100) / slopes[-1]
    problems = []
    if int(first_head) != want_head:
        if int(first_head) == want_head - 1:
            problems.append(
                f"head {first_head} has bias {-100 * slopes[first_head - 1]:.3f} at distance "
                f"100, below -1: h > 2 log2(100) = 13.3 means h = {want_head}"
            )
        else:
            problems.append(
                f"the first head above -1 at distance 100 is head {want_head} (1-based); "
                "the slopes of 16 heads are 2^(-h/2)"
            )
    if not math.isclose(float(last_range), want_range, rel_tol=1e-3):
        if math.isclose(float(last_range), 1 / slopes[-1], rel_tol=1e-3):
            problems.append("X = ln 100 (about 4.6), not 1: the range is 256 ln 100")
        elif math.isclose(float(last_range), math.log10(100) / slopes[-1], rel_tol=1e-3):
            problems.append("use the natural logarithm: X = ln 100, not log10 100")
        else:
            problems.append(
                f"the last slope is 2^-8, so d_16 = 256 ln 100 = {want_range:.1f} tokens"
            )
    if problems:
        return _fail("; ".join(problems))
    return CheckResult(True, f"head {want_head}; d_16 = {want_range:.1f} tokens")
