"""The book's long-context experiments, one import away (a facade).

The code lives in one module per lab, each readable top to bottom:
:mod:`~posenc_lib.book.training` (configuration, the one training loop, storage),
:mod:`~posenc_lib.book.lab_lm`, :mod:`~posenc_lib.book.lab_copy`,
:mod:`~posenc_lib.book.lab_retrieval` and :mod:`~posenc_lib.book.lab_extension`.
"""

from __future__ import annotations

from . import training  # noqa: F401  (ex.training.STORED_KINDS)
from .lab_copy import copy_accuracy, run_copy_lab
from .lab_extension import (
    EXTENSION_METHODS,
    angle_coverage,
    dynamic_modes_nll,
    run_context_extension,
    scaling_dict,
)
from .lab_lm import (
    attention_entropy,
    lm_metrics,
    run_lm_lab,
    sliding_window_nll,
    t5_clamp_untrained_buckets,
    token_nll,
)
from .lab_retrieval import retrieval_accuracy, run_retrieval_lab
from .training import (
    FULL,
    SCHEMES,
    SMALL,
    LabConfig,
    _lr_at,
    _masked_loss,
    build_model,
    get_config,
    load_replicate,
    load_results,
    load_stored,
    results_document,
    save_results,
    stored_path,
    summarise,
    train_model,
)

__all__ = [
    "SCHEMES",
    "EXTENSION_METHODS",
    "LabConfig",
    "SMALL",
    "FULL",
    "get_config",
    "build_model",
    "train_model",
    "lm_metrics",
    "token_nll",
    "sliding_window_nll",
    "attention_entropy",
    "t5_clamp_untrained_buckets",
    "copy_accuracy",
    "retrieval_accuracy",
    "scaling_dict",
    "angle_coverage",
    "dynamic_modes_nll",
    "run_lm_lab",
    "run_copy_lab",
    "run_retrieval_lab",
    "run_context_extension",
    "results_document",
    "save_results",
    "load_results",
    "load_replicate",
    "load_stored",
    "stored_path",
    "summarise",
    "_lr_at",
    "_masked_loss",
]
