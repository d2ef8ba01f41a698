"""Context-extension rules for RoPE frequencies: one function per ``rope_type``.

A rule maps the head dimension ``d``, the base ``b`` and a Hugging-Face-style
``rope_scaling`` dict to the inverse frequencies ``theta_i`` (``i = 0 .. d/2 - 1``) and the
*attention scaling* ``s_att`` that multiplies ``cos`` and ``sin``. Unscaled RoPE
(Su et al., 2021) uses ``theta_i = b ** (-2 i / d)`` and ``s_att = 1``.

Every rule has the same signature, ``fn(head_dim, base, params, seq_len)``, and they are
collected in :data:`ROPE_INIT_FUNCTIONS`, keyed by ``rope_type`` (the pattern of Hugging Face
transformers' table of the same name). ``params`` is the dict returned by
:func:`normalize_rope_scaling` (checked, defaults filled). Frequencies are computed in
float64 here; :func:`posenc_lib.rope.rope_inv_freq` casts them to float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from ._validation import check_int, check_positive_float

__all__ = [
    "ROPE_TYPES",
    "ROPE_INIT_FUNCTIONS",
    "normalize_rope_scaling",
    "base_inv_freq",
    "yarn_correction_range",
    "yarn_attention_scaling",
    "check_base",
]

#: The accepted values of ``scaling["rope_type"]``.
ROPE_TYPES = ("default", "linear", "ntk", "dynamic", "yarn", "llama3", "longrope")

#: The rules whose frequencies depend on the current sequence length.
LENGTH_DEPENDENT = ("dynamic", "longrope")

# required keys per rope_type (besides "rope_type"); every other known key is optional
_REQUIRED = {
    "default": (),
    "linear": ("factor",),
    "ntk": ("factor",),
    "dynamic": ("factor", "original_max_position_embeddings"),
    "yarn": ("factor", "original_max_position_embeddings"),
    "llama3": ("factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"),
    "longrope": ("short_factor", "long_factor", "original_max_position_embeddings"),
}
_KNOWN_KEYS = (
    "rope_type",
    "type",
    "factor",
    "original_max_position_embeddings",
    "beta_fast",
    "beta_slow",
    "attention_factor",
    "mscale",
    "mscale_all_dim",
    "truncate",
    "low_freq_factor",
    "high_freq_factor",
    "short_factor",
    "long_factor",
)


def _number(name: str, value, *, minimum: float = 0.0, strict: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    bad = value <= minimum if strict else value < minimum
    if not math.isfinite(value) or bad:
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {op} {minimum}, got {value}")
    return float(value)


def normalize_rope_scaling(scaling) -> dict | None:
    """Check a ``rope_scaling`` dict and return a copy with ``rope_type`` and defaults filled.

    Accepts ``None`` (no scaling), or a mapping with ``rope_type`` (or the legacy key
    ``type``) in :data:`ROPE_TYPES` and that type's keys: ``factor`` (>= 1),
    ``original_max_position_embeddings`` (int >= 1), ``beta_fast``/``beta_slow``
    (YaRN, defaults 32/1), ``attention_factor``, ``mscale``, ``mscale_all_dim``, ``truncate``
    (YaRN, default True), ``low_freq_factor`` < ``high_freq_factor`` (Llama 3).
    Keys of other types are ignored (as in Hugging Face configs); unknown keys raise.

    Raises:
        TypeError: ``scaling`` is not a mapping, or a value has the wrong type.
        ValueError: unknown ``rope_type`` or key, missing required key, value out of range.
    """
    if scaling is None:
        return None
    if not isinstance(scaling, Mapping):
        raise TypeError(f"scaling must be None or a dict, got {type(scaling).__name__}")
    params = dict(scaling)
    if "rope_theta" in params or "partial_rotary_factor" in params:
        raise ValueError(
            "scaling must not hold 'rope_theta' or 'partial_rotary_factor': pass base= and "
            "rotary_dim= (or head_dim=) instead"
        )
    unknown = sorted(set(params) - set(_KNOWN_KEYS))
    if unknown:
        raise ValueError(f"scaling has unknown key(s) {unknown}; valid keys are {_KNOWN_KEYS}")
    rope_type = params.pop("rope_type", None)
    legacy = params.pop("type", None)
    if rope_type is not None and legacy is not None and rope_type != legacy:
        raise ValueError(f"scaling['rope_type'] ({rope_type!r}) != scaling['type'] ({legacy!r})")
    rope_type = rope_type if rope_type is not None else legacy
    if rope_type is None:
        raise ValueError(f"scaling['rope_type'] is required, one of {ROPE_TYPES}")
    if rope_type not in ROPE_TYPES:
        raise ValueError(f"scaling['rope_type'] must be one of {ROPE_TYPES}, got {rope_type!r}")
    for key in _REQUIRED[rope_type]:
        if params.get(key) is None:
            raise ValueError(
                f"scaling['{key}'] is required for rope_type {rope_type!r} "
                f"(required keys: {_REQUIRED[rope_type]})"
            )
    out = {"rope_type": rope_type}
    if rope_type == "default":
        return out
    if params.get("factor") is not None or rope_type != "longrope":
        out["factor"] = _number("scaling['factor']", params["factor"], minimum=1.0, strict=False)
    if params.get("original_max_position_embeddings") is not None:
        out["original_max_position_embeddings"] = check_int(
            "scaling['original_max_position_embeddings']",
            params["original_max_position_embeddings"],
            minimum=1,
        )
    if rope_type == "yarn":
        # Hugging Face treats a missing, None or 0 beta as the paper's default
        out["beta_fast"] = _number("scaling['beta_fast']", params.get("beta_fast") or 32.0)
        out["beta_slow"] = _number("scaling['beta_slow']", params.get("beta_slow") or 1.0)
        if out["beta_fast"] <= out["beta_slow"]:
            raise ValueError(
                f"scaling['beta_fast'] must be > scaling['beta_slow'], got "
                f"{out['beta_fast']} <= {out['beta_slow']}"
            )
        att = params.get("attention_factor")
        out["attention_factor"] = (
            None if att is None else check_positive_float("scaling['attention_factor']", att)
        )
        for key in ("mscale", "mscale_all_dim"):
            v = params.get(key)
            out[key] = None if v is None else _number(f"scaling['{key}']", v, strict=False)
        truncate = params.get("truncate", True)
        if not isinstance(truncate, bool):
            raise TypeError(f"scaling['truncate'] must be a bool, got {truncate!r}")
        out["truncate"] = truncate
    if rope_type == "llama3":
        low = _number("scaling['low_freq_factor']", params["low_freq_factor"])
        high = _number("scaling['high_freq_factor']", params["high_freq_factor"])
        if high <= low:
            raise ValueError(
                f"scaling['high_freq_factor'] must be > scaling['low_freq_factor'], got "
                f"{high} <= {low}"
            )
        out.update(low_freq_factor=low, high_freq_factor=high)
    if rope_type == "longrope":
        for key in ("short_factor", "long_factor"):
            out[key] = _factor_list(f"scaling['{key}']", params[key])
        att = params.get("attention_factor")
        out["attention_factor"] = (
            None if att is None else check_positive_float("scaling['attention_factor']", att)
        )
    return out


def _factor_list(name: str, values) -> tuple[float, ...]:
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    return tuple(_number(f"{name}[{i}]", v) for i, v in enumerate(values))


def check_base(base) -> float:
    """Return the RoPE/sinusoidal frequency base as a float, or raise unless finite and > 1.

    ``theta_i = base ** (-2i/d)`` decreases with ``i`` only for ``base > 1``: ``base = 1``
    gives every pair the same frequency and ``base < 1`` reverses the order, so neither is
    a meaningful base (Hugging Face: ``rope_theta``; torchtune and Meta: ``theta``).
    """
    base = check_positive_float("base", base)
    if base <= 1.0:
        raise ValueError(f"base must be a finite number > 1, got {base}")
    return base


def base_inv_freq(
    head_dim: int, base: float, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Unscaled RoPE frequencies ``theta_i = base ** (-2 i / head_dim)`` (Su et al., 2021).

    The same geometric progression as the sinusoidal table of Vaswani et al. (2017); it is
    the one place the library computes it.

    Args:
        head_dim: even number of features ``d``, >= 2.
        base: frequency base ``b``, finite and > 1.
        device: device of the result.

    Returns:
        float64 tensor of shape ``(head_dim // 2,)``.
    """
    check_int("head_dim", head_dim, minimum=2, even=True)
    base = check_base(base)
    i = torch.arange(head_dim // 2, dtype=torch.float64, device=device)
    return base ** (-2.0 * i / head_dim)


def _default(head_dim: int, base: float, params, seq_len) -> tuple[torch.Tensor, float]:
    """No scaling (Su et al., 2021, RoFormer): ``theta_i = b ** (-2i/d)``, ``s_att = 1``."""
    return base_inv_freq(head_dim, base), 1.0


def _linear(head_dim: int, base: float, params, seq_len) -> tuple[torch.Tensor, float]:
    """Position interpolation (Chen et al., 2023): ``theta_i' = theta_i / factor``.

    Squeezing positions ``m -> m / factor`` is the same as dividing every frequency, so a
    context ``factor`` times longer maps onto the trained angle range. ``s_att = 1``.
    """
    return base_inv_freq(head_dim, base) / params["factor"], 1.0


def _ntk(head_dim: int, base: float, params, seq_len) -> tuple[torch.Tensor, float]:
    """Static NTK-aware scaling (bloc97, 2023): ``b' = b * factor ** (d / (d - 2))``.

    The lowest frequency ``theta_{d/2-1}`` is divided by exactly ``factor`` (interpolated)
    while ``theta_0 = 1`` is unchanged (extrapolated); the frequencies in between move
    geometrically. ``s_att = 1``. Needs ``d >= 4``.
    """
    new_base = base * params["factor"] ** (head_dim / (head_dim - 2))
    return base_inv_freq(head_dim, new_base), 1.0


def _dynamic(head_dim: int, base: float, params, seq_len) -> tuple[torch.Tensor, float]:
    """Dynamic NTK scaling (bloc97 / emozilla, 2023): NTK base change chosen from ``seq_len``.

    With ``L = max(seq_len, L0)`` (``L0 = original_max_position_embeddings``; ``seq_len=None``
    means ``L0``) and ``s = factor``:
    ``b' = b * (s * L / L0 - (s - 1)) ** (d / (d - 2))``, so nothing changes up to ``L0``
    and the base grows with the sequence beyond it. ``s_att = 1``. Needs ``d >= 4``.

    The base depends on the *current* length, so a full pass over ``L > L0`` tokens and
    token-by-token decoding of the same tokens differ from position 1 on (position 0 has
    angle 0 under every base): the full pass rotates every token with the final base, the
    incremental pass rotated each cached key with the base of its own step. Hugging Face
    transformers behaves the same way.
    """
    orig = params["original_max_position_embeddings"]
    length = orig if seq_len is None else max(seq_len, orig)
    factor = params["factor"]
    new_base = base * (factor * length / orig - (factor - 1)) ** (head_dim / (head_dim - 2))
    return base_inv_freq(head_dim, new_base), 1.0


def yarn_correction_range(head_dim: int, base: float, params) -> tuple[float, float]:
    """YaRN's pair-index range ``[low, high]`` of the ramp between extrapolation and PI.

    Pair ``i`` turns ``r_i = L0 * theta_i / (2 pi)`` times over the original context.
    Solving ``r_i = beta`` gives ``i(beta) = d * ln(L0 / (2 pi beta)) / (2 ln b)``;
    ``low = i(beta_fast)``, ``high = i(beta_slow)`` (floored/ceiled when ``truncate``),
    clipped to ``[0, d - 1]``.
    """
    orig = params["original_max_position_embeddings"]

    def index(rotations):
        return head_dim * math.log(orig / (2 * math.pi * rotations)) / (2 * math.log(base))

    low, high = index(params["beta_fast"]), index(params["beta_slow"])
    if params.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    return max(low, 0), min(high, head_dim - 1)


def yarn_attention_scaling(params) -> float:
    """YaRN's ``sqrt(1/t) = 0.1 ln(s) + 1`` (Peng et al., 2023, eq. 22), or the override.

    ``attention_factor`` wins when given; with both ``mscale`` and ``mscale_all_dim``
    non-zero (DeepSeek-V2) it is ``m(s, mscale) / m(s, mscale_all_dim)`` with
    ``m(s, a) = 0.1 a ln(s) + 1`` (1 when ``s <= 1``).
    """
    if params.get("attention_factor") is not None:
        return float(params["attention_factor"])
    factor = params["factor"]

    def m(a):
        return 1.0 if factor <= 1 else 0.1 * a * math.log(factor) + 1.0

    if params.get("mscale") and params.get("mscale_all_dim"):
        return m(params["mscale"]) / m(params["mscale_all_dim"])
    return m(1.0)


def _yarn(head_dim: int, base: float, params, seq_len) -> tuple[torch.Tensor, float]:
    """YaRN "NTK-by-parts" interpolation (Peng et al., 2023) and its attention scaling.

    With ``gamma_i = clip((i - low) / (high - low), 0, 1)`` over the pair index
    (:func:`yarn_correction_range`; pairs that turn more than ``beta_fast`` times in the
    original context keep their frequency, pairs that turn less than ``beta_slow`` times are
    interpolated by ``factor``):
    ``theta_i' = (1 - gamma_i) * theta_i + gamma_i * theta_i / factor``,
    and ``s_att`` from :func:`yarn_attention_scaling`.
    """
    theta = base_inv_freq(head_dim, base)
    low, high = yarn_correction_range(head_dim, base, params)
    if low == high:
        high += 0.001  # a zero-width ramp becomes a step
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    gamma = ((i - low) / (high - low)).clamp(0.0, 1.0)
    inv_freq = (1 - gamma) * theta + gamma * theta / params["factor"]
    return inv_freq, yarn_attention_scaling(params)


def _llama3(head_dim: int, base: float, params, seq_len) -> tuple[torch.Tensor, float]:
    """Llama 3.1 frequency-dependent scaling (Meta, 2024).

    With wavelength ``lambda_i = 2 pi / theta_i``, ``L0 = original_max_position_embeddings``,
    ``s = factor``, ``lo = low_freq_factor``, ``hi = high_freq_factor``:
    ``lambda_i < L0 / hi`` keeps ``theta_i``; ``lambda_i > L0 / lo`` gives ``theta_i / s``;
    in between ``theta_i' = (1 - a) theta_i / s + a theta_i`` with
    ``a = (L0 / lambda_i - lo) / (hi - lo)``. ``s_att = 1``.
    """
    theta = base_inv_freq(head_dim, base)
    orig, factor = params["original_max_position_embeddings"], params["factor"]
    low, high = params["low_freq_factor"], params["high_freq_factor"]
    wavelen = 2 * math.pi / theta
    a = (orig / wavelen - low) / (high - low)
    smooth = (1 - a) * theta / factor + a * theta
    out = torch.where(wavelen > orig / low, theta / factor, smooth)
    return torch.where(wavelen < orig / high, theta, out), 1.0


def _longrope(head_dim: int, base: float, params, seq_len) -> tuple[torch.Tensor, float]:
    """LongRoPE (Ding et al., 2024; Phi-3): per-frequency rescale factors found by search.

    ``theta_i' = theta_i / r_i`` with ``r = long_factor`` when ``seq_len > L0``
    (``L0 = original_max_position_embeddings``) and ``r = short_factor`` otherwise (also
    for ``seq_len=None``); ``s_att = sqrt(1 + ln(factor) / ln(L0))`` for ``factor > 1``
    (else 1), unless ``attention_factor`` is given. Hugging Face's ``_compute_longrope_
    parameters`` computes the same; without ``factor`` it uses
    ``max_position_embeddings / L0`` (:func:`posenc_lib.rope_convert.rope_kwargs_from_hf`
    fills it in the same way).
    """
    orig = params["original_max_position_embeddings"]
    key = "long_factor" if seq_len is not None and seq_len > orig else "short_factor"
    ext = torch.tensor(params[key], dtype=torch.float64)
    if ext.shape != (head_dim // 2,):
        raise ValueError(
            f"scaling['{key}'] must have head_dim // 2 = {head_dim // 2} entries, got {len(ext)}"
        )
    att = params.get("attention_factor")
    if att is None:
        factor = params.get("factor", 1.0)
        att = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
    return base_inv_freq(head_dim, base) / ext, att


RopeInitFn = Callable[[int, float, "dict | None", "int | None"], tuple[torch.Tensor, float]]

#: rope_type -> ``fn(head_dim, base, params, seq_len) -> (float64 inv_freq, attention_scaling)``
ROPE_INIT_FUNCTIONS: dict[str, RopeInitFn] = {
    "default": _default,
    "linear": _linear,
    "ntk": _ntk,
    "dynamic": _dynamic,
    "yarn": _yarn,
    "llama3": _llama3,
    "longrope": _longrope,
}
