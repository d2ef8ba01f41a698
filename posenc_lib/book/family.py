"""Score and bias curves of the wider family of relative schemes, for one figure.

Each function returns, for a tensor of distances ``r = i - j >= 0`` (query minus key,
keys in the past), what the scheme adds to a logit or multiplies it by. The formulas
follow the reference code of each method; the parameters are illustrative values, not
trained ones (KERPLE's are learned per head).

- ALiBi (Press et al., 2022): ``-m * r``, see :func:`posenc_lib.alibi.alibi_bias`.
- KERPLE, logarithmic variant (Chi et al., 2022): ``-p * log(1 + a * r)``, ``p, a > 0``.
- xPos (Sun et al., 2023): RoPE whose pair ``l`` of the query is scaled by
  ``zeta_l ** (m / B)`` and of the key by ``zeta_l ** (-n / B)``, with
  ``zeta_l = (2l + 0.4 d) / (1.4 d)`` and ``B = scale_base = 512`` (the paper's
  ``gamma`` is the 0.4), so that the pair's contribution is multiplied by
  ``zeta_l ** (r / B)``.
- NoPE (Kazemnejad et al., 2023): nothing, ``0``.
- Sandwich (Chi et al., 2023): the dot product of two sinusoidal embeddings,
  ``sum_{k=1}^{d/2} cos(r * 10000 ** (-2k/d))``, minus ``d/2`` (so ``0`` at ``r = 0``)
  and divided by ``8h/H`` for head ``h`` of ``H`` (NeMo's implementation).
- FIRE (Li et al., 2024): a learned MLP of the progressive-interpolated log distance
  ``psi(r) / psi(max(L, i))``, ``psi(x) = log(1 + c x)``; only that input is fixed, so
  :func:`fire_input` returns it (the MLP is learned).
- p-RoPE (Barbero et al., 2025): RoPE whose lowest frequencies are set to 0, so those
  pairs never turn; :func:`p_rope_inv_freq`, scored by :func:`rotary_score`.
- CoPE (Golovneva et al., 2024): the position of key ``j`` for query ``i`` is the sum of
  gates ``g_ik`` over ``j <= k <= i``, a function of the context rather than of
  ``i - j``; :func:`cope_positions`.
"""

from __future__ import annotations

import math

import torch

from .._validation import check_int, check_positive_float

__all__ = [
    "cope_positions",
    "fire_input",
    "kerple_log_bias",
    "nope_bias",
    "p_rope_inv_freq",
    "rotary_score",
    "sandwich_bias",
    "xpos_decay",
    "xpos_score",
]


def _distances(r: torch.Tensor) -> torch.Tensor:
    r = torch.as_tensor(r, dtype=torch.float64)
    if (r < 0).any():
        raise ValueError("r must hold distances i - j >= 0 (keys in the past)")
    return r


def nope_bias(r: torch.Tensor) -> torch.Tensor:
    """No position encoding: a zero bias at every distance ``r``."""
    return torch.zeros_like(_distances(r))


def kerple_log_bias(r: torch.Tensor, *, p: float = 1.0, a: float = 1.0) -> torch.Tensor:
    """KERPLE's logarithmic bias ``-p * log(1 + a * r)`` (float64).

    Args:
        r: distances ``i - j >= 0``.
        p, a: the two positive per-head parameters (learned in KERPLE).
    """
    p = check_positive_float("p", p)
    a = check_positive_float("a", a)
    return -p * torch.log1p(a * _distances(r))


def xpos_decay(head_dim: int, *, scale_base: float = 512.0) -> torch.Tensor:
    """xPos's per-pair base ``zeta_k = (2k + 0.4 d) / (1.4 d)`` for ``k < d/2``."""
    head_dim = check_int("head_dim", head_dim, minimum=2, even=True)
    check_positive_float("scale_base", scale_base)
    k = torch.arange(head_dim // 2, dtype=torch.float64)
    return (2 * k + 0.4 * head_dim) / (1.4 * head_dim)


def xpos_score(
    q: torch.Tensor,
    k: torch.Tensor,
    r: torch.Tensor,
    *,
    base: float = 10_000.0,
    scale_base: float = 512.0,
) -> torch.Tensor:
    """Score of query ``q`` and key ``k`` at distance ``r`` under xPos (float64).

    Interleaved pairs ``(2i, 2i + 1)``; pair ``i`` contributes
    ``zeta_i ** (r / scale_base) * Re[q_i conj(k_i) e^{i r theta_i}]`` with
    ``theta_i = base ** (-2i / d)`` (the key ``r`` positions before the query).
    """
    r = _distances(r)
    head_dim = q.shape[-1]
    zeta = xpos_decay(head_dim, scale_base=scale_base)
    theta = base ** (-2 * torch.arange(head_dim // 2, dtype=torch.float64) / head_dim)
    qc = torch.view_as_complex(q.double().reshape(head_dim // 2, 2).contiguous())
    kc = torch.view_as_complex(k.double().reshape(head_dim // 2, 2).contiguous())
    h = qc * kc.conj()
    turn = torch.polar(torch.ones_like(r[:, None] * theta), r[:, None] * theta)
    decay = zeta[None, :] ** (r[:, None] / scale_base)
    return (decay * (h[None, :] * turn).real).sum(-1)


def sandwich_bias(
    r: torch.Tensor, head_dim: int, *, head: int = 1, num_heads: int = 8
) -> torch.Tensor:
    """Sandwich's parameter-free bias at distances ``r`` for one head (float64).

    ``(sum_{k=1}^{d/2} cos(r w_k) - d/2) / (8 h / H)`` with ``w_k = 10000 ** (-2k/d)``,
    ``d = head_dim``, ``h = head`` in ``1..H`` and ``H = num_heads``: the inner product
    of the sinusoidal embeddings of two positions ``r`` apart, shifted to ``0`` at
    ``r = 0`` and compressed per head like ALiBi's slopes.
    """
    head_dim = check_int("head_dim", head_dim, minimum=2, even=True)
    num_heads = check_int("num_heads", num_heads, minimum=1)
    head = check_int("head", head, minimum=1)
    if head > num_heads:
        raise ValueError(f"head must be in 1..num_heads={num_heads}, got {head}")
    r = _distances(r)
    k = torch.arange(1, head_dim // 2 + 1, dtype=torch.float64)
    w = 10_000.0 ** (-2 * k / head_dim)
    dot = torch.cos(r[..., None] * w).sum(-1)
    return (dot - head_dim / 2) / (8 * head / num_heads)


def fire_input(
    r: torch.Tensor, query_pos: int, *, c: float = 0.1, threshold: float = 512.0
) -> torch.Tensor:
    """The input of FIRE's MLP: ``psi(r) / psi(max(L, i))``, ``psi(x) = log(1 + c x)``.

    ``r`` are distances ``i - j`` with ``0 <= r <= i = query_pos``; ``c`` and
    ``L = threshold`` are learned in FIRE (0.1 and 512 are the initial values used by
    public implementations of its listing). The result lies in ``[0, 1]`` whatever
    ``i`` is: that is the progressive interpolation. FIRE's bias is a learned MLP of
    this value.
    """
    query_pos = check_int("query_pos", query_pos, minimum=0)
    c = check_positive_float("c", c)
    threshold = check_positive_float("threshold", threshold)
    r = _distances(r)
    if (r > query_pos).any():
        raise ValueError(f"r must be <= query_pos={query_pos} (keys at j >= 0)")
    norm = math.log1p(c * max(float(query_pos), threshold))
    return torch.log1p(c * r) / norm


def p_rope_inv_freq(head_dim: int, p: float, *, base: float = 10_000.0) -> torch.Tensor:
    """p-RoPE frequencies: RoPE's ``base ** (-2k/d)`` with the lowest ones set to 0.

    The ``int(p * d // 2)`` fastest pairs keep their frequency (the count of the
    paper's ``apply_p_rope``), the other pairs get 0 and never turn. ``p = 1`` is RoPE,
    ``p = 0`` is NoPE. Float64, shape ``(d/2,)``.
    """
    head_dim = check_int("head_dim", head_dim, minimum=2, even=True)
    base = check_positive_float("base", base)
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
        raise ValueError(f"p must be a number in [0, 1], got {p!r}")
    k = torch.arange(head_dim // 2, dtype=torch.float64)
    inv = base ** (-2 * k / head_dim)
    inv[int(p * head_dim // 2) :] = 0.0
    return inv


def rotary_score(
    q: torch.Tensor, k: torch.Tensor, r: torch.Tensor, inv_freq: torch.Tensor
) -> torch.Tensor:
    """Score of ``q`` and a key ``k`` placed ``r`` positions before it (float64).

    Interleaved pairs: pair ``l`` contributes ``Re[q_l conj(k_l) e^{i r f_l}]`` with
    ``f_l = inv_freq[l]``; with RoPE's frequencies this is RoPE's score.
    """
    r = _distances(r)
    d = q.shape[-1]
    if d % 2 or k.shape[-1] != d or inv_freq.shape[-1] != d // 2:
        raise ValueError("q, k must have the same even size d and inv_freq d/2 entries")
    qc = torch.view_as_complex(q.double().reshape(d // 2, 2).contiguous())
    kc = torch.view_as_complex(k.double().reshape(d // 2, 2).contiguous())
    angle = r[:, None] * inv_freq.double()[None, :]
    turn = torch.polar(torch.ones_like(angle), angle)
    return ((qc * kc.conj())[None, :] * turn).real.sum(-1)


def cope_positions(gates: torch.Tensor) -> torch.Tensor:
    """CoPE positions ``p_ij = sum_{k=j}^{i} g_ik`` from a ``(L, L)`` gate matrix.

    ``gates[i, k]`` in ``[0, 1]`` says whether key ``k`` counts for query ``i`` (in
    CoPE a sigmoid of ``q_i . k_k / sqrt(d)``); gates above the diagonal are ignored
    (causal). Returns float64 ``(L, L)``, zero above the diagonal.
    """
    g = torch.as_tensor(gates, dtype=torch.float64)
    if g.dim() != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"gates must be a square (L, L) matrix, got {tuple(g.shape)}")
    if ((g < 0) | (g > 1)).any():
        raise ValueError("gates must lie in [0, 1]")
    g = torch.tril(g)
    return g.flip(-1).cumsum(-1).flip(-1).tril()
