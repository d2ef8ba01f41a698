"""Small helpers for notebooks and experiments: seeding and device choice.

Nothing here runs at import time: notebooks call these explicitly.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "pick_device"]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a seeded CPU generator.

    Also sets ``PYTHONHASHSEED`` (read by subprocesses only). Call it at the top of a
    notebook: nothing is seeded at import time.

    Returns:
        ``torch.Generator`` on the CPU, seeded with ``seed``.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds the legacy global RNG that notebooks use)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else the first CUDA device if there is one, else the CPU.

    The library never hard-codes a device: results follow their inputs' device, and
    notebooks choose one with this function.
    """
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
