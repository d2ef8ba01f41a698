"""Input checks shared by the library: each raises an error that names the argument
and the valid range, so that bad input never becomes a silent wrong answer."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_int(name: str, value, *, minimum: int | None = None, even: bool = False) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if even and value % 2:
        raise ValueError(f"{name} must be even (features are used in pairs), got {value}")
    return value


def check_positive_float(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is not finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def check_init_std(value, name: str = "init_std") -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """Raise unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_float_dtype(name: str, dtype) -> torch.dtype:
    """Raise unless ``dtype`` is a floating-point torch dtype."""
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating torch dtype {FLOAT_DTYPES}, got {dtype!r}")
    return dtype


def check_tensor(
    name: str, x, *, ndim: int | None = None, min_ndim: int | None = None, floating: bool = False
) -> torch.Tensor:
    """Raise unless ``x`` is a tensor with the required number of dimensions."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}"
        )
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def as_positions(positions, *, device=None, name: str = "positions") -> torch.Tensor:
    """Turn an int ``n`` into ``arange(n)`` or check a 1-D tensor of finite positions.

    Returns a float32 tensor (positions may be fractional), on ``device`` if given.
    """
    if isinstance(positions, bool):
        raise TypeError(f"{name} must be an int or a 1-D tensor, got bool")
    if isinstance(positions, int):
        check_int(name, positions, minimum=0)
        return torch.arange(positions, dtype=torch.float32, device=device)
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"{name} must be an int or a 1-D tensor, got {type(positions).__name__}")
    if positions.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(positions.shape)}")
    if positions.is_complex():
        raise TypeError(f"{name} must be real, got dtype {positions.dtype}")
    if positions.is_floating_point() and not torch.isfinite(positions).all():
        raise ValueError(f"{name} must be finite (no nan or inf)")
    return positions.to(
        device=device if device is not None else positions.device, dtype=torch.float32
    )
