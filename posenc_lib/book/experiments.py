"""Experiments of the book's long-context chapters: train the library's TinyTransformer
with each position scheme, evaluate it at longer lengths, extend RoPE models.

Two configurations: :data:`SMALL` (the default; all schemes and both tasks train in about
a minute on a 2-core CPU, as the book's CI runs it) and :data:`FULL` (bigger model, more
steps, three seeds; selected by ``POSENC_FULL=1`` or ``get_config(full=True)``).
Every run is seeded: the seed fixes the initial weights (``torch.manual_seed``) and the
order of the batches (an explicit ``torch.Generator``), so the same seed gives the same
numbers on the same machine and library versions. Results are lists of flat records
(dicts) that :func:`results_document` wraps with the configuration, seeds, device,
versions and date, ready for :func:`save_results`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data as _data
from .._validation import check_choice, check_int
from ..utils import pick_device

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
    "copy_accuracy",
    "scaling_dict",
    "run_lm_lab",
    "run_copy_lab",
    "run_context_extension",
    "results_document",
    "save_results",
    "load_results",
    "summarise",
]

#: The position schemes of the lab, in the order the chapters plot them.
SCHEMES = ("none", "sinusoidal", "learned", "shaw", "t5", "alibi", "rope")
#: Context-extension methods for a trained RoPE model ("none" keeps the frequencies).
EXTENSION_METHODS = ("none", "linear", "ntk", "dynamic", "yarn", "llama3")


@dataclass(frozen=True)
class LabConfig:
    """Everything that defines a lab run (saved next to its results)."""

    name: str = "small"
    train_len: int = 64  # L: training length, in characters / symbols
    eval_factors: tuple[int, ...] = (1, 2, 4, 8)  # evaluate at L, 2L, 4L, 8L
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    batch_size: int = 32
    lm_steps: int = 120
    copy_steps: int = 150
    lr: float = 3e-3
    warmup_steps: int = 30
    seeds: tuple[int, ...] = (0,)
    lm_eval_windows: int = 8  # windows of the longest length; every length reads the same text
    copy_eval_batch: int = 64
    copy_vocab: int = 16
    copy_delay: int = 5
    ext_factor: int = 4  # context extension: evaluate the RoPE model at ext_factor * L
    finetune_steps: int = 0  # short fine-tune at ext_factor * L after scaling (0: none)
    finetune_batch_size: int = 8
    finetune_lr: float = 1e-3
    # Multiply token embeddings by sqrt(d_model) before adding the sinusoidal table, as in
    # Vaswani et al. (2017); without it the unit-amplitude table drowns the N(0, 0.02)
    # embeddings and the sinusoidal model barely trains within these budgets.
    sinusoidal_scale_input: bool = True

    def __post_init__(self):
        check_int("train_len", self.train_len, minimum=8)
        for f in self.eval_factors:
            check_int("eval_factors[i]", f, minimum=1)
        check_int("ext_factor", self.ext_factor, minimum=1)
        if self.copy_delay >= self.train_len:
            raise ValueError(f"copy_delay must be < train_len, got {self.copy_delay}")


#: The CI configuration, 7 schemes x 2 tasks x 1 seed in about a minute on 2 CPU cores.
SMALL = LabConfig()
#: The full configuration, the same model trained longer with three seeds (``POSENC_FULL=1``).
FULL = LabConfig(
    name="full",
    lm_steps=400,
    copy_steps=250,
    seeds=(0, 1, 2),
    lm_eval_windows=48,
    copy_eval_batch=128,
    finetune_steps=50,
)


def get_config(full: bool | None = None) -> LabConfig:
    """Return :data:`FULL` if ``full`` (default: environment ``POSENC_FULL=1``) else :data:`SMALL`."""
    if full is None:
        full = os.environ.get("POSENC_FULL", "0").strip() not in ("", "0", "false", "False")
    return FULL if full else SMALL


def build_model(
    scheme: str,
    vocab_size: int,
    cfg: LabConfig,
    *,
    seed: int,
    device=None,
    max_len: int | None = None,
):
    """A seeded ``TinyTransformer`` for ``scheme``.

    The learned table has exactly ``train_len`` rows (the model cannot run past it, on
    purpose); the other schemes get ``max_len`` (default: the longest evaluation length).
    For ``"sinusoidal"``, ``cfg.sinusoidal_scale_input`` switches on the ``sqrt(d_model)``
    scaling of the token embeddings.
    """
    from ..model import TinyTransformer

    check_choice("scheme", scheme, SCHEMES)
    if max_len is None:
        max_len = cfg.train_len * max(max(cfg.eval_factors), cfg.ext_factor)
    torch.manual_seed(seed)
    model = TinyTransformer(
        vocab_size,
        d_model=cfg.d_model,
        num_heads=cfg.num_heads,
        num_layers=cfg.num_layers,
        max_len=cfg.train_len if scheme == "learned" else max_len,
        position=scheme,
        sinusoidal_scale_input=cfg.sinusoidal_scale_input,
    )
    return model.to(device if device is not None else pick_device())


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of ``lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _masked_loss(logits, targets, mask):
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    if mask is None:
        return loss.mean()
    mask = mask.flatten().to(loss.dtype)
    return (loss * mask).sum() / mask.sum()


def train_model(
    model, batch_fn: Callable, *, steps: int, lr: float, warmup_steps: int = 0, seed: int = 0
) -> list[float]:
    """Train ``model`` with AdamW for ``steps`` steps; return the loss of every step.

    ``batch_fn(generator)`` returns ``(inputs, targets)`` or ``(inputs, targets, mask)``
    on the CPU; the batches are moved to the model's device.
    """
    check_int("steps", steps, minimum=0)
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, max(1, warmup_steps))
        batch = batch_fn(gen)
        inputs, targets = batch[0].to(device), batch[1].to(device)
        mask = batch[2].to(device) if len(batch) > 2 else None
        loss = _masked_loss(model(inputs), targets, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def lm_metrics(model, inputs, targets, *, batch_size: int = 16, bin_width: int | None = None):
    """Mean negative log-likelihood (nats per character) over all positions, and the
    mean per bin of ``bin_width`` positions (``None``: no bins).

    Raises whatever the model raises (a learned table past its length: ``ValueError``).
    """
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros(inputs.shape[1], dtype=torch.float64)
    for i in range(0, inputs.shape[0], batch_size):
        x, y = inputs[i : i + batch_size].to(device), targets[i : i + batch_size].to(device)
        logits = model(x).float()
        nll = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
        total += nll.double().sum(0).cpu()
    per_pos = total / inputs.shape[0]
    out = {"nll": float(per_pos.mean())}
    if bin_width:
        out["nll_by_position"] = [float(b.mean()) for b in per_pos.split(bin_width)]
        out["bin_width"] = bin_width
    return out


@torch.no_grad()
def copy_accuracy(model, inputs, targets, mask, *, batch_size: int = 64) -> dict:
    """Token accuracy on the delayed-copy task, masked positions excluded.

    Returns ``{"accuracy": float, "_per_position": list}`` (the accuracy at each position,
    averaged over the batch; ``nan``-free: positions without targets give 0).
    """
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros(inputs.shape[1])
    for i in range(0, inputs.shape[0], batch_size):
        x = inputs[i : i + batch_size].to(device)
        pred = model(x).argmax(-1).cpu()
        correct += ((pred == targets[i : i + batch_size]) & mask[i : i + batch_size]).float().sum(0)
    counts = mask.float().sum(0)
    return {
        "accuracy": float(correct.sum() / counts.sum()),
        "_per_position": (correct / counts.clamp_min(1)).tolist(),
    }


def scaling_dict(method: str, *, factor: float, original_len: int, seq_len: int | None = None):
    """The Hugging-Face-style ``rope_scaling`` dict of ``method`` (``None`` for "none").

    ``ntk`` is the static NTK-aware base change of bloc97; ``dynamic`` recomputes it from
    the current sequence length.
    """
    check_choice("method", method, EXTENSION_METHODS)
    if method == "none":
        return None
    out = {
        "rope_type": method,
        "factor": float(factor),
        "original_max_position_embeddings": int(original_len),
    }
    if method == "llama3":
        out.update(low_freq_factor=1.0, high_freq_factor=4.0)
    return out


# ---------------------------------------------------------------------------- lab runs


def _corpus(cfg: LabConfig):
    text = _data.load_corpus()
    tok = _data.CharTokenizer.from_text(text)
    train, val = _data.split_tokens(tok.encode(text), val_fraction=0.1)
    return tok, train, val


def _eval_lengths(cfg: LabConfig) -> list[int]:
    return [cfg.train_len * f for f in cfg.eval_factors]


def _eval_sets(cfg: LabConfig, val: torch.Tensor, lengths) -> dict:
    """Windows of each length cut from the *same* stretch of validation text
    (``lm_eval_windows`` windows of the longest length), so that every length is scored
    on the same characters and only the context available to each prediction changes."""
    span = cfg.lm_eval_windows * max(lengths)
    if val.numel() < span + 1:
        raise ValueError(
            f"validation text has {val.numel()} ids, need {span + 1}; lower lm_eval_windows"
        )
    return {n: _data.lm_eval_windows(val[: span + 1], seq_len=n) for n in lengths}


def _train_and_evaluate(
    cfg: LabConfig,
    task: str,
    *,
    vocab_size: int,
    schemes: Iterable[str],
    seeds,
    device,
    log: Callable[[str], None] | None,
    batch: Callable[[torch.Generator], tuple],
    steps: int,
    eval_sets: Callable[[int], dict],
    evaluate: Callable[..., dict],
    missing: tuple[str, ...],
) -> list[dict]:
    """The loop both labs share: for each seed and scheme, train at ``L`` on ``batch``,
    then record ``evaluate(model, n, data)`` for every ``(n, data)`` in ``eval_sets(seed)``.
    Where the model cannot run (a learned table past its rows) the ``missing`` metrics
    are ``None`` and the record keeps the error message."""
    seeds = cfg.seeds if seeds is None else tuple(seeds)
    records = []
    for seed in seeds:
        for scheme in schemes:
            t0 = time.perf_counter()
            model = build_model(scheme, vocab_size, cfg, seed=seed, device=device)
            losses = train_model(
                model, batch, steps=steps, lr=cfg.lr, warmup_steps=cfg.warmup_steps, seed=seed
            )
            for n, data in eval_sets(seed).items():
                rec = {
                    "task": task,
                    "scheme": scheme,
                    "seed": seed,
                    "train_len": cfg.train_len,
                    "eval_len": n,
                    "final_train_loss": losses[-1] if losses else None,
                }
                try:
                    rec.update(evaluate(model, n, data))
                except ValueError as err:
                    rec.update(dict.fromkeys(missing), error=str(err)[:200])
                records.append(rec)
            if log:
                log(f"{task} {scheme:>10} seed {seed}: {time.perf_counter() - t0:.1f} s")
    return records


def run_lm_lab(
    cfg: LabConfig,
    *,
    schemes: Iterable[str] = SCHEMES,
    seeds=None,
    device=None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Character-level language modelling: train each scheme at ``L``, score the same
    stretch of validation text cut into windows of every ``L * factor``. One record per
    (scheme, seed, length); ``ppl`` is ``None`` where the model cannot run (a learned
    table past its rows)."""
    tok, train, val = _corpus(cfg)
    L = cfg.train_len
    evals = _eval_sets(cfg, val, _eval_lengths(cfg))

    def evaluate(model, n, data):
        m = lm_metrics(model, *data, bin_width=max(1, L // 2))
        return {**m, "ppl": math.exp(m["nll"])}

    return _train_and_evaluate(
        cfg,
        "lm",
        vocab_size=tok.vocab_size,
        schemes=schemes,
        seeds=seeds,
        device=device,
        log=log,
        batch=lambda g: _data.lm_batch(train, batch_size=cfg.batch_size, seq_len=L, generator=g),
        steps=cfg.lm_steps,
        eval_sets=lambda seed: evals,
        evaluate=evaluate,
        missing=("nll", "ppl"),
    )


def run_copy_lab(
    cfg: LabConfig,
    *,
    schemes: Iterable[str] = SCHEMES,
    seeds=None,
    device=None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Delayed copy (see :func:`posenc_lib.book.data.delayed_copy_batch`): train at ``L``,
    report token accuracy at every ``L * factor``, overall and on positions ``>= L``."""
    L = cfg.train_len
    task = dict(vocab_size=cfg.copy_vocab, delay=cfg.copy_delay)

    def eval_sets(seed):
        gen = torch.Generator().manual_seed(10_000 + seed)  # the same batches for every scheme
        return {
            n: _data.delayed_copy_batch(
                batch_size=cfg.copy_eval_batch, seq_len=n, generator=gen, **task
            )
            for n in _eval_lengths(cfg)
        }

    def evaluate(model, n, data):
        m = copy_accuracy(model, *data)
        per_pos = torch.tensor(m.pop("_per_position"))
        m["accuracy_beyond_train_len"] = float(per_pos[L:].mean()) if n > L else None
        return m

    return _train_and_evaluate(
        cfg,
        "delayed_copy",
        vocab_size=cfg.copy_vocab,
        schemes=schemes,
        seeds=seeds,
        device=device,
        log=log,
        batch=lambda g: _data.delayed_copy_batch(
            batch_size=cfg.batch_size, seq_len=L, generator=g, **task
        ),
        steps=cfg.copy_steps,
        eval_sets=eval_sets,
        evaluate=evaluate,
        missing=("accuracy", "accuracy_beyond_train_len"),
    )


def run_context_extension(
    cfg: LabConfig,
    *,
    methods: Iterable[str] = EXTENSION_METHODS,
    seeds=None,
    device=None,
    finetune_steps: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train a RoPE language model at ``L``; evaluate it at ``L`` and ``ext_factor * L``
    with each scaling method, without and (if ``finetune_steps``) after a short fine-tune
    at the new length. Each fine-tune starts from the same trained weights."""
    tok, train, val = _corpus(cfg)
    seeds = cfg.seeds if seeds is None else tuple(seeds)
    finetune_steps = cfg.finetune_steps if finetune_steps is None else finetune_steps
    L, n_ext = cfg.train_len, cfg.train_len * cfg.ext_factor
    records = []
    evals = _eval_sets(cfg, val, (L, n_ext))
    for seed in seeds:
        t0 = time.perf_counter()
        model = build_model("rope", tok.vocab_size, cfg, seed=seed, device=device)
        train_model(
            model,
            lambda g: _data.lm_batch(train, batch_size=cfg.batch_size, seq_len=L, generator=g),
            steps=cfg.lm_steps,
            lr=cfg.lr,
            warmup_steps=cfg.warmup_steps,
            seed=seed,
        )
        trained = {k: v.clone() for k, v in model.state_dict().items()}
        for method in methods:
            scaling = scaling_dict(method, factor=cfg.ext_factor, original_len=L)
            stages = [("none", 0)] + ([("finetuned", finetune_steps)] if finetune_steps else [])
            for stage, steps in stages:
                model.load_state_dict(trained)
                model.set_rope_scaling(scaling)
                if steps:
                    train_model(
                        model,
                        lambda g: _data.lm_batch(
                            train, batch_size=cfg.finetune_batch_size, seq_len=n_ext, generator=g
                        ),
                        steps=steps,
                        lr=cfg.finetune_lr,
                        warmup_steps=max(1, steps // 10),
                        seed=seed + 1,
                    )
                for n, (x, y) in evals.items():
                    m = lm_metrics(model, x, y, bin_width=max(1, L // 2))
                    records.append(
                        {
                            "task": "context_extension",
                            "scheme": "rope",
                            "method": method,
                            "scaling": scaling,
                            "stage": stage,
                            "finetune_steps": steps,
                            "seed": seed,
                            "train_len": L,
                            "eval_len": n,
                            **m,
                            "ppl": math.exp(m["nll"]),
                        }
                    )
            model.set_rope_scaling(None)
        if log:
            log(f"context extension seed {seed}: {time.perf_counter() - t0:.1f} s")
    return records


# ------------------------------------------------------------------------------ storage


def results_document(
    kind: str,
    cfg: LabConfig,
    records: list[dict],
    *,
    device=None,
    wall_seconds: float | None = None,
) -> dict:
    """Wrap ``records`` with what is needed to reproduce and judge them."""
    from .. import __version__

    device = torch.device(device) if device is not None else pick_device()
    return {
        "kind": kind,
        "config": dataclasses.asdict(cfg),
        "seeds": list(cfg.seeds),
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "posenc_lib": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "corpus": _data.CORPUS_SOURCE,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": wall_seconds,
        "records": records,
    }


def save_results(doc: dict, path):
    """Write ``doc`` as indented JSON (parent folders created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load_results(path) -> dict:
    """Read a document written by :func:`save_results`."""
    doc = json.loads(Path(path).read_text())
    for key in ("config", "records", "versions", "device"):
        if key not in doc:
            raise ValueError(f"{path} is not a results document: no {key!r} key")
    return doc


def summarise(records: list[dict], metric: str, *, by=("scheme", "eval_len")) -> dict:
    """Group ``records`` by the keys ``by`` and return, per group, the mean, min and max
    of ``metric`` over seeds (groups where the metric is ``None`` give ``None``)."""
    groups: dict = {}
    for r in records:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r.get(metric))
    out = {}
    for key, vals in groups.items():
        if any(v is None for v in vals):
            out[key] = None
        else:
            out[key] = {
                "mean": sum(vals) / len(vals),
                "min": min(vals),
                "max": max(vals),
                "n": len(vals),
            }
    return out
