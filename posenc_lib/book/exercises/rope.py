"""Checkers for the exercises of the RoPE chapter.

Every checker calls the reader's function on several inputs, compares the answer with a
reference written here in float64 with complex numbers (a different route from
:func:`posenc_lib.rope.apply_rope`), and, when the answer is wrong, tries the usual
mistakes (rotation by ``-m theta`` instead of ``+m theta``, the other feature layout,
frequencies ``base**(-i/d)`` instead of ``base**(-2i/d)``, positions ignored, the tail of a
partial rotary head modified, a weight permutation applied to the whole matrix instead of
each head, ...) to say precisely what went wrong. The result is a
:class:`~posenc_lib.book.exercises.absolute.CheckResult`: truthy when the answer is right, with
a message either way.

Conventions (those of :mod:`posenc_lib.rope`): pair ``k`` of a token at position ``m``
turns by ``+m theta_k`` with ``theta_k = base**(-2k/r)`` (``r`` = number of rotated
features); ``"half"`` pairs feature ``k`` with ``k + r/2``, ``"interleaved"`` pairs
``2k`` with ``2k + 1``; features ``r ..`` pass unchanged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

from .absolute import CheckResult, _accepts, _fail

__all__ = [
    "reference_rope",
    "check_apply_rope",
    "check_layout_conversion",
    "check_rope_decode",
    "check_diagonal_answers",
    "check_bf16_answers",
    "reference_rope_decode",
]

_ATOL = 1e-4
_LAYOUTS = ("half", "interleaved")
_EXPONENTS = {
    "2i/d": "theta_i = base**(-2i/d) (correct)",
    "i/d": "the frequencies are base**(-i/d) instead of base**(-2i/d): with i the pair "
    "index, the factor 2 is needed (the slowest pair turns far too fast)",
    "4i/d": "the frequencies are base**(-4i/d): torch.arange(0, d, 2) already gives 2i, "
    "so do not multiply it by 2 again",
    "-2i/d": "the exponent has the wrong sign: theta_i = base**(-2i/d) <= 1, not base**(+2i/d)",
}


def reference_rope(
    x: torch.Tensor,
    positions: torch.Tensor,
    *,
    base: float = 10_000.0,
    layout: str = "half",
    rotary_dim: int | None = None,
    direction: int = 1,
    exponent: str = "2i/d",
    freq_dim: int | None = None,
    tail: str = "keep",
) -> torch.Tensor:
    """RoPE in float64 with complex numbers, right by default or with a usual mistake.

    Args:
        x: ``(..., seq, head_dim)`` tensor.
        positions: ``(seq,)`` positions.
        base: frequency base.
        layout: ``"half"`` or ``"interleaved"``.
        rotary_dim: number of rotated features ``r`` (default ``head_dim``).
        direction: ``+1`` (right) or ``-1`` (rotation by ``-m theta``).
        exponent: ``"2i/d"`` (right), ``"i/d"``, ``"4i/d"`` or ``"-2i/d"``.
        freq_dim: the ``d`` in the exponent (default ``r``; ``head_dim`` is a mistake
            when ``r < head_dim``).
        tail: what happens to features ``r ..``: ``"keep"`` (right), ``"zero"``, or
            ``"rotate"`` (the whole head rotated, ``rotary_dim`` ignored).

    Returns:
        float64 tensor of ``x``'s shape.
    """
    x = x.detach().to(torch.float64)
    head_dim = x.shape[-1]
    r = head_dim if rotary_dim is None else rotary_dim
    if tail == "rotate":
        r, freq_dim = head_dim, head_dim
    d = r if freq_dim is None else freq_dim
    n = r // 2
    i = torch.arange(n, dtype=torch.float64)
    power = {"2i/d": -2 * i, "i/d": -i, "4i/d": -4 * i, "-2i/d": 2 * i}[exponent]
    theta = base ** (power / d)
    angle = positions.to(torch.float64)[:, None] * theta  # (seq, n)
    rot = torch.polar(torch.ones_like(angle), direction * angle)
    if layout == "half":
        idx_a, idx_b = torch.arange(n), torch.arange(n) + n
    else:
        idx_a, idx_b = torch.arange(0, r, 2), torch.arange(1, r, 2)
    z = torch.complex(x[..., idx_a], x[..., idx_b]) * rot
    out = x.clone()
    out[..., idx_a], out[..., idx_b] = z.real, z.imag
    if tail == "zero":
        out[..., r:] = 0.0
    return out


def _run(fn: Callable, args: tuple, kwargs: dict, what: str):
    """(float64 tensor, None) or (None, failure)."""
    try:
        out = fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001  (any error of the reader's code is reported)
        return None, _fail(f"{what} raised {type(err).__name__}: {err}")
    try:
        out = torch.as_tensor(out.detach() if torch.is_tensor(out) else out)
    except Exception:  # noqa: BLE001
        return None, _fail(f"{what} returned a {type(out).__name__}; return a tensor")
    if out.is_complex():
        return None, _fail(
            f"{what} returned a complex tensor; return real features of x's shape "
            "(torch.view_as_real(...).flatten(-2) turns complex pairs back into features)"
        )
    return out.to(torch.float64), None


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=_ATOL, rtol=0))


# ------------------------------------------------------------------------ apply_rope


_FULL_CASES = (
    # (x shape, positions, base)
    ((2, 3, 5, 8), list(range(5)), 10_000.0),
    ((1, 2, 7, 16), [3, 4, 10, 11, 40, 41, 100], 100.0),
    ((1, 1, 4, 2), [0, 1, 2, 50], 10_000.0),
)
_PARTIAL_CASES = (
    # (x shape, positions, base, rotary_dim)
    ((1, 2, 6, 16), [0, 1, 2, 3, 20, 21], 10_000.0, 4),
    ((2, 1, 5, 12), [5, 6, 7, 8, 30], 500.0, 8),
    ((1, 1, 3, 8), [0, 1, 2], 10_000.0, 8),
)


def check_apply_rope(fn: Callable, *, layout: str = "half", partial: bool = False) -> CheckResult:
    """Check the reader's RoPE ``fn(x, positions, base=...)`` for the given layout.

    ``x`` is a float32 ``(batch, heads, seq, head_dim)`` tensor and ``positions`` a
    float32 ``(seq,)`` tensor (not always ``0 .. seq-1``). With ``partial=True`` the
    checker also passes ``rotary_dim=r``: only the first ``r`` features are rotated, with
    frequencies ``base**(-2i/r)``, the others pass unchanged (GPT-NeoX's partial rotary).
    ``fn`` may leave out ``base``; then only the cases with base 10000 are run.

    Args:
        fn: the reader's function, returning a tensor of ``x``'s shape.
        layout: the layout the exercise asks for, ``"half"`` or ``"interleaved"``.
        partial: test partial rotary (``rotary_dim`` argument) instead of full heads.

    Returns:
        A :class:`~posenc_lib.book.exercises.absolute.CheckResult` naming the first mistake found.
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    if partial and not _accepts(fn, "rotary_dim"):
        return _fail("partial=True: fn must accept a keyword argument rotary_dim")
    takes_base = _accepts(fn, "base")
    cases = _PARTIAL_CASES if partial else tuple(c + (None,) for c in _FULL_CASES)
    gen = torch.Generator().manual_seed(0)
    run = 0
    for shape, pos_list, base, rotary_dim in cases:
        if not takes_base and base != 10_000.0:
            continue
        x = torch.randn(shape, generator=gen)
        positions = torch.tensor(pos_list, dtype=torch.float32)
        kwargs = {"base": base} if takes_base else {}
        if rotary_dim is not None:
            kwargs["rotary_dim"] = rotary_dim
        shown = [f"x {tuple(shape)}", f"positions {pos_list}"] + [
            f"{k}={v:g}" if k == "base" else f"{k}={v}" for k, v in kwargs.items()
        ]
        case = "[" + ", ".join(shown) + "] "
        got, failure = _run(fn, (x.clone(), positions.clone()), kwargs, "fn" + case.rstrip())
        if failure is not None:
            return failure
        if tuple(got.shape) != tuple(shape):
            return _fail(case + f"shape {tuple(got.shape)}, expected x's shape {tuple(shape)}")
        if not torch.isfinite(got).all():
            return _fail(case + "the result contains nan or inf")
        want = reference_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim)
        run += 1
        if _close(got, want):
            continue
        return _fail(case + _diagnose_rope(got, x, positions, base, layout, rotary_dim))
    what = "partial rotary (rotary_dim)" if partial else "full-head RoPE"
    return CheckResult(
        True, f"your function matches {what} in the {layout!r} layout on {run} cases"
    )


def _diagnose_rope(got, x, positions, base, layout, rotary_dim) -> str:
    seq = positions.shape[0]
    head_dim = x.shape[-1]
    partial = rotary_dim is not None and rotary_dim < head_dim
    tails = ("keep", "zero", "rotate") if partial else ("keep",)
    freq_dims = (None, head_dim) if partial else (None,)
    pos_options = {"given": positions, "arange": torch.arange(seq, dtype=torch.float32)}
    options = itertools.product(
        _LAYOUTS,
        (1, -1),
        tuple(_EXPONENTS),
        (base, 10_000.0),
        tuple(pos_options),
        tails,
        freq_dims,
    )
    matches = []
    for lay, direction, exponent, used_base, pos_name, tail, freq_dim in options:
        if tail == "rotate" and freq_dim is not None:
            continue
        variant = reference_rope(
            x,
            pos_options[pos_name],
            base=used_base,
            layout=lay,
            rotary_dim=rotary_dim,
            direction=direction,
            exponent=exponent,
            freq_dim=freq_dim,
            tail=tail,
        )
        if not _close(got, variant):
            continue
        problems = []
        if lay != layout:
            pairs = "(k, k + d/2)" if lay == "half" else "(2k, 2k+1)"
            want = "(2k, 2k+1)" if layout == "interleaved" else "(k, k + d/2)"
            problems.append(
                f"the layouts are mixed up: you rotate the pairs {pairs} (layout {lay!r}) "
                f"but this exercise asks for {want} (layout {layout!r})"
            )
        if direction == -1:
            problems.append(
                "the rotation direction is flipped: you turn by -m*theta. The first "
                "feature of a pair is a*cos - b*sin, the second b*cos + a*sin"
            )
        if exponent != "2i/d":
            problems.append(_EXPONENTS[exponent])
        if used_base != base:
            problems.append(f"the `base` argument is ignored (got base 10000, asked {base:g})")
        if pos_name == "arange":
            problems.append(
                "the positions argument is ignored: you use 0 .. seq-1, but the positions "
                "are given (they need not start at 0, e.g. with a KV cache)"
            )
        if tail == "zero":
            problems.append(
                "the tail of the head (features rotary_dim ..) is set to zero; it must "
                "pass through unchanged"
            )
        if tail == "rotate":
            problems.append(
                "the whole head is rotated: rotary_dim is ignored, so the tail (features "
                "rotary_dim ..) is modified; only the first rotary_dim features turn"
            )
        if freq_dim is not None:
            problems.append(
                "the frequencies use head_dim in the exponent; with partial rotary they are "
                "base**(-2i/rotary_dim), as if the rotated part were the whole head"
            )
        matches.append(problems)
    if matches:
        return "; ".join(min(matches, key=len))
    special = _diagnose_special(got, x, positions, base, layout, rotary_dim)
    if special:
        return special
    return _generic_rope_hint(got, x, positions, base, layout, rotary_dim)


def _hf_tables_interleaved(x, positions, base, r):
    """Interleaved pairs rotated with Hugging Face tables ``cat(angles, angles)``."""
    x64 = x.to(torch.float64)
    theta = base ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
    angle = positions.to(torch.float64)[:, None] * theta
    table = torch.cat((angle, angle), dim=-1)  # feature f gets angle f mod r/2
    cos, sin = table.cos(), table.sin()
    head = x64[..., :r]
    rot = torch.stack((-head[..., 1::2], head[..., 0::2]), dim=-1).flatten(-2)
    out = x64.clone()
    out[..., :r] = head * cos + rot * sin
    return out


def _aliased(x, positions, base, layout, r):
    """The second feature of each pair computed from the already rotated first one."""
    x64 = x.to(torch.float64)
    theta = base ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
    angle = positions.to(torch.float64)[:, None] * theta
    cos, sin = angle.cos(), angle.sin()
    n = r // 2
    idx_a, idx_b = (
        (torch.arange(n), torch.arange(n) + n)
        if layout == "half"
        else (torch.arange(0, r, 2), torch.arange(1, r, 2))
    )
    a, b = x64[..., idx_a], x64[..., idx_b]
    a_new = a * cos - b * sin
    out = x64.clone()
    out[..., idx_a], out[..., idx_b] = a_new, b * cos + a_new * sin
    return out


def _diagnose_special(got, x, positions, base, layout, rotary_dim) -> str:
    """Three mistakes that look alike at first sight, each with its own diagnosis."""
    r = x.shape[-1] if rotary_dim is None else rotary_dim
    if layout == "interleaved" and _close(got, _hf_tables_interleaved(x, positions, base, r)):
        return (
            "your cos/sin tables are Hugging Face style, cat(angles, angles), made for the "
            "'half' layout, but you rotate interleaved pairs (2k, 2k+1): the two features "
            "of a pair get different angles. For interleaved pairs repeat each angle "
            "twice, angles.repeat_interleave(2, dim=-1), or use the angles per pair"
        )
    if _close(got, _aliased(x, positions, base, layout, r)):
        return (
            "in-place aliasing: the second feature of each pair, b*cos + a*sin, used the "
            "already rotated a. Slices such as x[..., ::2] are views of x, so writing "
            "into x changes them; compute both new halves before writing, or work on "
            "a copy (x.clone()) or with torch.cat/stack"
        )
    want = reference_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim)
    err = (got - want).abs().max().item()
    if err < 5e-2:
        return (
            f"the answer is right only to about {err:.0e}: computed in low precision "
            "(float16 or bfloat16)? The angles m*theta need float32 at least; positions "
            "and frequencies lose digits in 16-bit formats. Keep x's float32 dtype"
        )
    return ""


def _generic_rope_hint(got, x, positions, base, layout, rotary_dim) -> str:
    want = reference_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim)
    x64 = x.to(torch.float64)
    r = x.shape[-1] if rotary_dim is None else rotary_dim
    if r < x.shape[-1] and not _close(got[..., r:], x64[..., r:]):
        return (
            f"the tail (features {r} ..) must pass through unchanged, and it does not; "
            "it is not a simple mistake the checker knows either"
        )
    n = r // 2
    if layout == "half":
        pair_norm = lambda t: t[..., :n] ** 2 + t[..., n:r] ** 2  # noqa: E731
    else:
        pair_norm = lambda t: t[..., 0:r:2] ** 2 + t[..., 1:r:2] ** 2  # noqa: E731
    if not _close(pair_norm(got), pair_norm(x64)):
        return (
            f"not a rotation of the {layout!r} pairs: the length of some pair changed "
            "(a rotation keeps a^2 + b^2). Check that cos multiplies both features and "
            "sin appears once with each sign"
        )
    zero = positions == 0
    if zero.any() and not _close(got[..., zero, :], x64[..., zero, :]):
        return "at position 0 the rotation must be the identity (angle 0), and it is not"
    bad = ((got - want).abs() > _ATOL).nonzero()
    idx = tuple(bad[0].tolist())
    return (
        f"the pair lengths are right but the angles are not; first wrong entry "
        f"out[{', '.join(map(str, idx))}] = {got[idx].item():.4f}, expected "
        f"{want[idx].item():.4f} (position {positions[idx[-2]].item():g}, feature {idx[-1]})"
    )


# ------------------------------------------------------------------ layout conversion


def _scores(wq, wk, x, positions, num_heads, layout):
    """Per-head RoPE scores ``(heads, seq, seq)`` for projections ``x @ W.T``."""
    seq = x.shape[0]
    q = (x @ wq.T).reshape(seq, num_heads, -1).transpose(0, 1)
    k = (x @ wk.T).reshape(seq, num_heads, -1).transpose(0, 1)
    q, k = reference_rope(q, positions, layout=layout), reference_rope(k, positions, layout=layout)
    return q @ k.transpose(-1, -2)


def _per_head(w: torch.Tensor, num_heads: int, perm: torch.Tensor) -> torch.Tensor:
    head_dim = w.shape[0] // num_heads
    return w.reshape(num_heads, head_dim, -1)[:, perm].reshape(w.shape)


def check_layout_conversion(fn: Callable) -> CheckResult:
    """Check ``fn(W, num_heads)`` converts a projection from the interleaved to the half layout.

    ``W`` is the ``(num_heads * head_dim, d_model)`` weight of a query or key projection
    (``q = x @ W.T``) of a checkpoint trained with the interleaved layout. The converted
    weight, used with the half layout for both queries and keys, must give exactly the
    attention scores of the original weights with the interleaved layout.

    Args:
        fn: the reader's function, returning a tensor of ``W``'s shape.

    Returns:
        A :class:`~posenc_lib.book.exercises.absolute.CheckResult` naming the first mistake found.
    """
    gen = torch.Generator().manual_seed(1)
    cases = ((1, 4, 6), (2, 8, 12), (3, 6, 10))  # (num_heads, head_dim, d_model)
    for num_heads, head_dim, d_model in cases:
        out_dim = num_heads * head_dim
        wq = torch.randn(out_dim, d_model, generator=gen, dtype=torch.float64)
        wk = torch.randn(out_dim, d_model, generator=gen, dtype=torch.float64)
        x = torch.randn(7, d_model, generator=gen, dtype=torch.float64)
        positions = torch.tensor([0.0, 1, 2, 3, 7, 20, 21])
        case = f"[num_heads={num_heads}, head_dim={head_dim}, W {(out_dim, d_model)}] "
        got = []
        for w in (wq, wk):
            out, failure = _run(fn, (w.clone(), num_heads), {}, "fn" + case.rstrip())
            if failure is not None:
                return failure
            if tuple(out.shape) != (out_dim, d_model):
                return _fail(case + f"shape {tuple(out.shape)}, expected W's shape")
            got.append(out)
        want = _scores(wq, wk, x, positions, num_heads, "interleaved")
        have = _scores(got[0], got[1], x, positions, num_heads, "half")
        if _close(have, want):
            continue
        perm = torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))
        full = torch.cat((torch.arange(0, out_dim, 2), torch.arange(1, out_dim, 2)))
        known = [
            (
                "you returned W unchanged: the half layout pairs other features, so the "
                "rows of each head must be permuted",
                wq,
            ),
            (
                "this is the inverse permutation (half -> interleaved); use [0, 2, 4, ..., "
                "1, 3, 5, ...] within each head (torch.argsort inverts a permutation)",
                _per_head(wq, num_heads, torch.argsort(perm)),
            ),
            (
                "the permutation is applied to all num_heads * head_dim rows at once; "
                "apply it within each head (reshape to (num_heads, head_dim, d_model))",
                wq[full],
            ),
            (
                "the columns are permuted; permute the rows (the output features, q = x @ W.T)",
                wq[:, torch.cat((torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)))],
            ),
        ]
        for message, variant in known:
            if _close(got[0], variant):
                return _fail(case + message)
        return _fail(
            case + "with the half layout, your weights do not give the scores of the "
            "interleaved checkpoint (largest score error "
            f"{(have - want).abs().max().item():.3g}); row 2k of a head must move to row k "
            "and row 2k+1 to row k + head_dim/2"
        )
    return CheckResult(
        True,
        f"converted weights reproduce the interleaved checkpoint's scores on {len(cases)} "
        "cases (1 to 3 heads)",
    )


# ------------------------------------------------------------ incremental decoding


def reference_rope_decode(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    base: float = 10_000.0,
    layout: str = "half",
    rotate_q: bool = True,
    rotate_k: bool = True,
    causal: bool = True,
    scale: bool = True,
) -> torch.Tensor:
    """Causal RoPE attention in float64, right by default or with a usual mistake.

    ``q, k, v``: ``(batch, heads, seq, head_dim)``, not rotated; token ``t`` sits at
    position ``t``. ``rotate_q=False`` or ``rotate_k=False`` leave one side unrotated;
    both ``False`` is attention without positions.
    """
    seq = q.shape[-2]
    pos = torch.arange(seq, dtype=torch.float64)
    q64, k64, v64 = (t.detach().to(torch.float64) for t in (q, k, v))
    if rotate_q:
        q64 = reference_rope(q64, pos, base=base, layout=layout)
    if rotate_k:
        k64 = reference_rope(k64, pos, base=base, layout=layout)
    logits = q64 @ k64.transpose(-1, -2)
    if scale:
        logits = logits / q.shape[-1] ** 0.5
    if causal:
        future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
        logits = logits.masked_fill(future, float("-inf"))
    return logits.softmax(-1) @ v64


_DECODE_MISTAKES = (
    (
        {"rotate_q": False, "rotate_k": False},
        "your scores carry no position at all. Either every step rotates at position 0, "
        "or the cache keeps unrotated keys and rotates them with the new query's angle "
        "(R_t^T R_t = I cancels it). Rotate each key once, at its own position, cache it "
        "rotated, and rotate the new query at its position (the cache length)",
    ),
    (
        {"rotate_q": False},
        "the query is not rotated, or the cached keys are rotated again at the query's "
        "position (which cancels the query's rotation). The new query turns by its own "
        "position; cached keys are never rotated twice",
    ),
    (
        {"rotate_k": False},
        "the keys are not rotated: cache R_n k_n, the key turned at its own position n",
    ),
    (
        {"layout": "interleaved"},
        "you rotate interleaved pairs (2k, 2k+1); this exercise uses the 'half' layout, "
        "pairs (k, k + d/2)",
    ),
    (
        {"causal": False},
        "the token at step t sees keys after it: at step t the cache must hold only tokens 0 .. t",
    ),
    ({"scale": False}, "the logits are not divided by sqrt(head_dim)"),
)


def check_rope_decode(fn: Callable) -> CheckResult:
    """Check the reader's token-by-token RoPE decoding ``fn(q, k, v, base=...)``.

    ``fn`` gets unrotated float32 ``q, k, v`` of shape ``(batch, heads, seq, head_dim)``
    (token ``t`` at position ``t``) and must return the outputs of causal attention with
    RoPE (``"half"`` layout, logits divided by ``sqrt(head_dim)``) computed one token at a
    time with a cache, ``(batch, heads, seq, head_dim)``. It is compared with one full
    causal pass.
    """
    gen = torch.Generator().manual_seed(1)
    cases = (((1, 2, 9, 8), 10_000.0), ((2, 1, 6, 16), 100.0))
    takes_base = _accepts(fn, "base")
    for shape, base in cases:
        if not takes_base and base != 10_000.0:
            continue
        q, k, v = (torch.randn(shape, generator=gen) for _ in range(3))
        kwargs = {"base": base} if takes_base else {}
        case = f"[q, k, v {tuple(shape)}, base={base:g}] "
        got, failure = _run(fn, (q.clone(), k.clone(), v.clone()), kwargs, "fn" + case.rstrip())
        if failure is not None:
            return failure
        if tuple(got.shape) != tuple(shape):
            return _fail(case + f"shape {tuple(got.shape)}, expected {tuple(shape)}")
        want = reference_rope_decode(q, k, v, base=base)
        if _close(got, want):
            continue
        for options, message in _DECODE_MISTAKES:
            if _close(got, reference_rope_decode(q, k, v, base=base, **options)):
                return _fail(case + message)
        if _close(got[..., :1, :], want[..., :1, :]):
            bad = int(((got - want).abs() > _ATOL).any(-1).nonzero()[0, -1])
            return _fail(
                case + f"the first token is right but step {bad} is not: check the "
                "position of the new token (the number of cached tokens) and the cache"
            )
        return _fail(case + "already the first token's output is wrong")
    return CheckResult(True, "token-by-token decoding matches the full causal pass")


# ------------------------------------------------------------- axial 2-D RoPE scores


def _axial_score(q: torch.Tensor, k: torch.Tensor, dy: float, dx: float) -> float:
    """Score of q at (0, 0) and k at (dy, dx) with the library's axial 2-D RoPE."""
    from ... import apply_rope, rope_cos_sin_2d  # the exercise asks for these two

    head_dim = q.shape[-1]
    c0, s0 = rope_cos_sin_2d(torch.tensor([[0.0, 0.0]]), head_dim)
    c1, s1 = rope_cos_sin_2d(torch.tensor([[float(dy), float(dx)]]), head_dim)
    q1, k1 = q.reshape(1, head_dim).float(), k.reshape(1, head_dim).float()
    return float(apply_rope(q1, c0, s0) @ apply_rope(k1, c1, s1).T)


def check_diagonal_answers(
    q: torch.Tensor, k: torch.Tensor, *, s_diag: float, s_anti: float, contrast: float
) -> CheckResult:
    """Check ``S(1, 1)``, ``S(1, -1)`` and the diagonal contrast of axial 2-D RoPE.

    ``q`` (query at ``(0, 0)``) and ``k`` (key at ``(dy, dx)``) are the reader's
    ``(1, head_dim)`` vectors; ``S(dy, dx)`` is their score,
    ``contrast = S(1, 1) + S(-1, -1) - S(1, -1) - S(-1, 1)``.
    """
    tol = 1e-3
    try:
        truth = {(dy, dx): _axial_score(q, k, dy, dx) for dy in (-1, 1) for dx in (-1, 1)}
    except Exception as err:  # noqa: BLE001
        return _fail(f"q and k must be (1, head_dim) tensors: {type(err).__name__}: {err}")
    want_c = truth[1, 1] + truth[-1, -1] - truth[1, -1] - truth[-1, 1]
    close = lambda a, b: abs(float(a) - float(b)) < tol  # noqa: E731
    if abs(float(contrast)) > tol:
        return _fail(
            f"the contrast must vanish (up to rounding), you report {float(contrast):.4f}: "
            "S = f(dy) + g(dx) makes every term cancel. Check the four offsets and signs"
        )
    if close(s_diag, truth[1, -1]) and close(s_anti, truth[1, 1]) and not close(s_diag, s_anti):
        return _fail("S(1, 1) and S(1, -1) are swapped")
    if (
        close(s_diag, truth[-1, -1])
        and close(s_anti, truth[-1, 1])
        and not close(s_diag, truth[1, 1])
    ):
        return _fail(
            "you computed S(-1, -1) and S(-1, 1): the offset is the key's position minus "
            "the query's; put the query at (0, 0) and the key at (dy, dx)"
        )
    if not (close(s_diag, truth[1, 1]) and close(s_anti, truth[1, -1])):
        ones = torch.ones_like(q)
        if close(s_diag, _axial_score(ones, ones, 1, 1)):
            return _fail("these are the scores of q = k = ones, not of your q and k")
        return _fail(
            f"S(1, 1) = {truth[1, 1]:.4f} and S(1, -1) = {truth[1, -1]:.4f} for your q, k; "
            f"you report {float(s_diag):.4f} and {float(s_anti):.4f}"
        )
    return CheckResult(
        True,
        f"S(1, 1) = {truth[1, 1]:.3f}, S(1, -1) = {truth[1, -1]:.3f}, contrast "
        f"{want_c:.1e}: a preferred diagonal, but no interaction between the axes",
    )


# ------------------------------------------------------------- bfloat16 answers


def check_bf16_answers(largest_exact: int, spacing: float, stored: float) -> CheckResult:
    """Answers of the bfloat16 exercise.

    Args:
        largest_exact: the largest ``N`` with every integer ``0 .. N`` exact in bfloat16.
        spacing: the gap between neighbouring bfloat16 numbers near 100 000.
        stored: the bfloat16 value that 100 000 becomes.
    """
    as_bf16 = lambda v: torch.tensor(float(v), dtype=torch.bfloat16).item()  # noqa: E731
    want_n = next(v for v in range(1, 1000) if as_bf16(v) != v) - 1
    want_gap = torch.finfo(torch.bfloat16).eps * 2.0**16
    want_stored = as_bf16(100_000)
    problems = []
    if int(largest_exact) != want_n:
        hint = {
            128: "8 significant bits means 2^8 = 256: the leading bit is implicit, so 7 "
            "stored bits still give 8 significant ones",
            255: "256 = 2^8 is exact too (a power of two); 257 is the first integer lost",
            257: "257 needs 9 significant bits; it rounds to 256 or 258",
        }.get(int(largest_exact), f"every integer up to {want_n} is exact, {want_n + 1} is not")
        problems.append(hint)
    if not math.isclose(float(spacing), want_gap):
        hint = {
            256.0: "100 000 lies between 2^16 and 2^17, where the gap is 2^(16-7) = 512, "
            "not 2^(15-7)",
            1024.0: "the gap between 2^16 and 2^17 is 2^(16-7) = 512: 7 bits after the leading one",
        }.get(float(spacing), f"the gap near 100 000 is {want_gap:.0f}")
        problems.append(hint)
    if not math.isclose(float(stored), want_stored):
        hint = (
            "100 000 is not a multiple of 512, so bfloat16 cannot hold it"
            if math.isclose(float(stored), 100_000)
            else f"100 000 rounds to the nearest multiple of 512, {want_stored:.0f}"
        )
        problems.append(hint)
    if problems:
        return _fail("; ".join(problems))
    return CheckResult(
        True, f"N = {want_n}, gap {want_gap:.0f}, 100000 stored as {want_stored:.0f}"
    )
