"""Input checks shared by the library: each raises an error that names the argument
and the valid range, so that bad input never becomes a silent wrong answer."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np
import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex)


def _as_integer(name: str, value) -> int:
    """``value`` as a Python int: ints, numpy integers and 0-d integer tensors pass; bools,
    floats (even ``4.0``) and other types raise a ``TypeError`` naming ``name``."""
    if isinstance(value, torch.Tensor):
        if value.ndim != 0 or value.dtype == torch.bool or not _is_integer_dtype(value.dtype):
            raise TypeError(
                f"{name} must be an int (or a 0-d integer tensor), got a tensor of shape "
                f"{tuple(value.shape)} and dtype {value.dtype}"
            )
        return int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    return int(value)


def check_int(name: str, value, *, minimum: int | None = None, even: bool = False) -> int:
    """Return ``value`` as a Python int, or raise if it is not an integer >= ``minimum``.

    Accepted: ``int``, numpy integer scalars (any ``numbers.Integral``) and 0-d integer
    tensors. Rejected with a ``TypeError`` naming ``name``: ``bool`` (``True`` is not a
    count), floats (even integral ones such as ``4.0``) and tensors that are not 0-d integers.
    """
    value = _as_integer(name, value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if even and value % 2:
        raise ValueError(f"{name} must be even (features are used in pairs), got {value}")
    return value


def check_bool(name: str, value) -> bool:
    """Return ``value`` as a bool, or raise: only ``True``/``False`` (and numpy bools) pass.

    A string such as ``"no"`` is truthy, so accepting it would silently mean True.
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} ({value!r})")


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
    if isinstance(positions, numbers.Integral):
        positions = check_int(name, positions, minimum=0)
        return torch.arange(positions, dtype=torch.float32, device=device)
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"{name} must be an int or a 1-D tensor, got {type(positions).__name__}")
    if positions.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(positions.shape)}")
    if positions.is_complex() or positions.dtype == torch.bool:
        raise TypeError(f"{name} must be real numbers, got dtype {positions.dtype}")
    if positions.is_floating_point() and not torch.isfinite(positions).all():
        raise ValueError(f"{name} must be finite (no nan or inf)")
    return positions.to(
        device=device if device is not None else positions.device, dtype=torch.float32
    )


def as_positions_checked(positions, *, device=None, name: str = "positions") -> torch.Tensor:
    """:func:`as_positions`, plus: bool tensors are rejected (``True`` is not position 1),
    and under ``torch.compile`` the data-dependent finiteness check is skipped (the
    compiled graph cannot branch on tensor values; eager calls keep every check)."""
    if isinstance(positions, torch.Tensor):
        if positions.dtype == torch.bool:
            raise TypeError(f"{name} must hold numbers, got a bool tensor (use a mask instead)")
        if torch.compiler.is_compiling():
            if positions.ndim != 1:
                raise ValueError(f"{name} must be 1-D, got shape {tuple(positions.shape)}")
            if positions.is_complex():
                raise TypeError(f"{name} must be real, got dtype {positions.dtype}")
            return positions.to(
                device=device if device is not None else positions.device, dtype=torch.float32
            )
    return as_positions(positions, device=device, name=name)
