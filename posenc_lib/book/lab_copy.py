"""The delayed-copy lab of chapter 7: at every position, output the random symbol seen
``delay`` steps earlier (:func:`~posenc_lib.book.data.delayed_copy_batch`). Nothing in
the content says where to look: only an exact relative offset does, so a scheme whose
position signal is blurry (NoPE, ALiBi's linear penalty) cannot solve it by design.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from . import data as _data
from .training import SCHEMES, LabConfig, build_model, train_model

__all__ = ["copy_accuracy", "run_copy_lab"]


@torch.no_grad()
def copy_accuracy(model, inputs, targets, mask, *, batch_size: int = 64) -> dict:
    """Token accuracy on masked positions: ``{"accuracy": float, "_per_position": list}``
    (the accuracy at each position over the batch; positions without targets give 0)."""
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros(inputs.shape[1])
    for i in range(0, inputs.shape[0], batch_size):
        pred = model(inputs[i : i + batch_size].to(device)).argmax(-1).cpu()
        hit = (pred == targets[i : i + batch_size]) & mask[i : i + batch_size]
        correct += hit.float().sum(0)
    counts = mask.float().sum(0)
    return {
        "accuracy": float(correct.sum() / counts.sum()),
        "_per_position": (correct / counts.clamp_min(1)).tolist(),
    }


def run_copy_lab(
    cfg: LabConfig,
    *,
    schemes: Iterable[str] = SCHEMES,
    seeds=None,
    device=None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train each scheme on the delayed copy at ``L``; report token accuracy at every
    ``L * factor``, overall and on positions ``>= L``. The evaluation batches are the same
    for every scheme of a seed."""
    L = cfg.train_len
    task = dict(vocab_size=cfg.copy_vocab, delay=cfg.copy_delay)
    seeds = cfg.seeds if seeds is None else tuple(seeds)
    records = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(10_000 + seed)
        evals = {
            n: _data.delayed_copy_batch(
                batch_size=cfg.copy_eval_batch, seq_len=n, generator=gen, **task
            )
            for n in (L * f for f in cfg.eval_factors)
        }
        for scheme in schemes:
            t0 = time.perf_counter()
            model = build_model(scheme, cfg.copy_vocab, cfg, seed=seed, device=device)
            losses = train_model(
                model,
                lambda g: _data.delayed_copy_batch(
                    batch_size=cfg.batch_size, seq_len=L, generator=g, **task
                ),
                steps=cfg.copy_steps, lr=cfg.lr, warmup_steps=cfg.warmup_steps, seed=seed,
            )  # fmt: skip
            for n, data in evals.items():
                rec = {"task": "delayed_copy", "scheme": scheme, "seed": seed,
                       "train_len": L, "eval_len": n,
                       "final_train_loss": losses[-1] if losses else None}  # fmt: skip
                try:
                    m = copy_accuracy(model, *data)
                    per_pos = torch.tensor(m.pop("_per_position"))
                    m["accuracy_beyond_train_len"] = float(per_pos[L:].mean()) if n > L else None
                    rec.update(m)
                except ValueError as err:
                    rec.update(accuracy=None, accuracy_beyond_train_len=None, error=str(err)[:200])
                records.append(rec)
            if log:
                log(f"copy {scheme:>10} seed {seed}: {time.perf_counter() - t0:.1f} s")
    return records
