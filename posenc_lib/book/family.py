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
"""

from __future__ import annotations

import torch

from .._validation import check_int, check_positive_float

__all__ = ["kerple_log_bias", "nope_bias", "xpos_decay", "xpos_score"]


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
    """xPos's per-pair base ``zeta_k = (2k + 0.4 d) / (1.4 d)``, ``k < d/2`` (float64)."""
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
