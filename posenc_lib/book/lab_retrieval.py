"""The retrieval lab of chapters 7 and 8: the repeated block
(:func:`~posenc_lib.book.data.repeated_block_batch`). A block of key symbols appears
twice; at the second copy the model must read the keys from the first. Accuracy against
the distance between the copies says whether a model *uses* context that far back,
which perplexity cannot: a model that looks only at the last ``L`` characters scores the
same perplexity as one that reads everything, but cannot retrieve a key ``2L`` back.

Every evaluation places the second copy at the end of a sequence of the longest length,
so only the distance changes; the sliding window of ``L`` (the same model, fed the last
``L`` symbols) is the free baseline, and a model trained at ``ext_factor * L`` the
trained-long one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from . import data as _data
from .training import SCHEMES, LabConfig, build_model, train_model

__all__ = [
    "retrieval_vocab",
    "retrieval_distances",
    "retrieval_accuracy",
    "train_retrieval",
    "run_retrieval_lab",
]


def retrieval_vocab(cfg: LabConfig) -> int:
    """Fillers, one marker and the key symbols."""
    return cfg.retrieval_fillers + 1 + cfg.retrieval_keys


def retrieval_distances(cfg: LabConfig, seq_len: int | None = None) -> list[int]:
    """The evaluated distances, ``cfg.retrieval_distances`` times ``L``, that fit in
    ``seq_len`` (default: the longest evaluation length)."""
    seq_len = cfg.max_eval_len if seq_len is None else seq_len
    limit = seq_len - cfg.retrieval_block - 1
    return [
        int(f * cfg.train_len)
        for f in cfg.retrieval_distances
        if cfg.retrieval_block + 1 <= int(f * cfg.train_len) <= limit
    ]


def _task(cfg):
    return dict(fillers=cfg.retrieval_fillers, keys=cfg.retrieval_keys, block=cfg.retrieval_block)


@torch.no_grad()
def retrieval_accuracy(
    model, inputs, targets, mask, *, window: int | None = None, batch_size: int = 32
) -> float:
    """Accuracy on the key positions; with ``window`` the model only sees the last
    ``window`` symbols (the targets sit at the end, so they all stay in view)."""
    model.eval()
    device = next(model.parameters()).device
    if window is not None and window < inputs.shape[1]:
        inputs, targets, mask = inputs[:, -window:], targets[:, -window:], mask[:, -window:]
    hits = total = 0
    for i in range(0, inputs.shape[0], batch_size):
        pred = model(inputs[i : i + batch_size].to(device)).argmax(-1).cpu()
        m = mask[i : i + batch_size]
        hits += int(((pred == targets[i : i + batch_size]) & m).sum())
        total += int(m.sum())
    return hits / total


def eval_batches(cfg: LabConfig, seed: int, seq_len: int | None = None) -> dict:
    """``{distance: (inputs, targets, mask)}``, the same for every model of a seed."""
    seq_len = cfg.max_eval_len if seq_len is None else seq_len
    gen = torch.Generator().manual_seed(20_000 + seed)
    return {
        d: _data.repeated_block_batch(
            batch_size=cfg.retrieval_eval_batch,
            seq_len=seq_len,
            generator=gen,
            distance=d,
            **_task(cfg),
        )
        for d in retrieval_distances(cfg, seq_len)
    }


def train_retrieval(
    scheme: str, cfg: LabConfig, *, seed: int, device=None, train_len: int | None = None
):
    """A model trained on the repeated block at ``train_len`` (default ``L``); returns
    ``(model, losses)``. Every length gets the same number of sequences per step, so the
    same number of passkeys to learn from (a passkey is one target per sequence)."""
    n = cfg.train_len if train_len is None else train_len
    batch = cfg.retrieval_batch_size
    model = build_model(scheme, retrieval_vocab(cfg), cfg, seed=seed, device=device)
    losses = train_model(
        model,
        lambda g: _data.repeated_block_batch(
            batch_size=batch, seq_len=n, generator=g, **_task(cfg)
        ),
        steps=cfg.retrieval_steps,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        seed=seed,
    )
    return model, losses


def evaluate_retrieval(model, cfg: LabConfig, evals: dict, *, window: int) -> list[dict]:
    """One record per distance: full-input accuracy (None if the model cannot run) and
    the accuracy with a sliding window of ``window``."""
    out = []
    for d, data in evals.items():
        rec = {"distance": d, "eval_len": data[0].shape[1]}
        try:
            rec["accuracy"] = retrieval_accuracy(model, *data)
        except ValueError as err:
            rec.update(accuracy=None, error=str(err)[:200])
        rec["accuracy_window"] = retrieval_accuracy(model, *data, window=window)
        out.append(rec)
    return out


def run_retrieval_lab(
    cfg: LabConfig,
    *,
    schemes: Iterable[str] = SCHEMES,
    seeds=None,
    device=None,
    trained_long: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train each scheme on the repeated block at ``L``, then measure accuracy against
    distance at the longest evaluation length, with the full input and with a sliding
    window of ``L``; with ``trained_long`` also RoPE trained at ``ext_factor * L``."""
    seeds = cfg.seeds if seeds is None else tuple(seeds)
    L = cfg.train_len
    records = []
    for seed in seeds:
        evals = eval_batches(cfg, seed)
        runs = [(s, L) for s in schemes]
        if trained_long:
            runs.append(("trained_long", L * cfg.ext_factor))
        for name, n_train in runs:
            t0 = time.perf_counter()
            scheme = "rope" if name == "trained_long" else name
            model, losses = train_retrieval(
                scheme, cfg, seed=seed, device=device, train_len=n_train
            )
            for rec in evaluate_retrieval(model, cfg, evals, window=n_train):
                records.append(
                    {
                        "task": "retrieval",
                        "scheme": name,
                        "seed": seed,
                        "train_len": n_train,
                        "final_train_loss": losses[-1] if losses else None,
                        **rec,
                    }
                )
            if log:
                log(f"retrieval {name:>12} seed {seed}: {time.perf_counter() - t0:.1f} s")
    return records
