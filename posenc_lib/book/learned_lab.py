"""Chapter 3's controlled experiment: where does a learned position table fail, and why?

One task (delayed copy, :func:`~posenc_lib.book.data.delayed_copy_batch`), one model, one
optimiser, one step budget; only the position scheme (``"none"``, ``"sinusoidal"``,
``"learned"``, ``"rope"``) and the distribution of training lengths change. Every model is
tested at ``max_len`` (longer than any training sequence), and the accuracy is kept per
position, next to the number of training batches that contained that position.

Two length distributions, both on ``[min_train, max_train]``:

- ``"uniform"``: every length equally likely;
- ``"long_tail"``: ``min_train + floor(T)`` with ``T`` exponential of mean ``mean_extra``,
  capped at ``max_train`` (mostly short sequences, like fine-tuning on short documents).

:data:`SMALL` (one seed) is what the book's CI runs; :data:`FULL` (three seeds) is stored as
package data in ``posenc_lib/book/results/learned_lab_full.json`` by
``scripts/run_learned_lab.py`` and read back with :func:`load_full_results`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import platform
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from .._validation import check_choice, check_int
from .data import delayed_copy_batch
from .experiments import train_model

__all__ = [
    "SCHEMES",
    "DISTRIBUTIONS",
    "LearnedLabConfig",
    "SMALL",
    "FULL",
    "sample_length",
    "build_model",
    "train_one",
    "per_position_accuracy",
    "batches_containing",
    "offset_similarity",
    "top2_share",
    "table_stats",
    "run_learned_lab",
    "results_document",
    "load_full_results",
    "FULL_RESULTS",
]

#: The schemes compared, in plotting order (the trivial baseline first).
SCHEMES = ("none", "sinusoidal", "learned", "rope")
#: The training-length distributions.
DISTRIBUTIONS = ("uniform", "long_tail")
#: File name of the stored full run inside ``posenc_lib/book/results``.
FULL_RESULTS = "learned_lab_full.json"


@dataclass(frozen=True)
class LearnedLabConfig:
    """Everything that defines a run of the lab (stored next to its results)."""

    name: str = "small"
    schemes: tuple[str, ...] = SCHEMES
    distributions: tuple[str, ...] = DISTRIBUTIONS
    seeds: tuple[int, ...] = (0,)
    vocab_size: int = 16
    delay: int = 1
    max_len: int = 64  # rows of the learned table, and the test length
    min_train: int = 8
    max_train: int = 40
    mean_extra: float = 5.0  # long tail: mean of the exponential part of the length
    steps: int = 400
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    eval_batch: int = 256
    eval_seed: int = 1234

    def __post_init__(self):
        for s in self.schemes:
            check_choice("schemes[i]", s, SCHEMES)
        for s in self.distributions:
            check_choice("distributions[i]", s, DISTRIBUTIONS)
        check_int("min_train", self.min_train, minimum=self.delay + 1)
        check_int("max_train", self.max_train, minimum=self.min_train)
        check_int("max_len", self.max_len, minimum=self.max_train)
        check_int("steps", self.steps, minimum=1)


#: The CI configuration, 4 schemes x 2 distributions x 1 seed.
SMALL = LearnedLabConfig()
#: The stored configuration, the same runs with three seeds.
FULL = LearnedLabConfig(name="full", seeds=(0, 1, 2))


def sample_length(distribution: str, cfg: LearnedLabConfig, gen: torch.Generator) -> int:
    """One training length drawn from ``distribution`` with the generator ``gen``."""
    check_choice("distribution", distribution, DISTRIBUTIONS)
    u = torch.rand(1, generator=gen).item()
    if distribution == "uniform":
        span = cfg.max_train - cfg.min_train + 1
        return cfg.min_train + min(int(u * span), span - 1)
    extra = int(-cfg.mean_extra * math.log1p(-u))  # inverse-CDF draw of an exponential
    return min(cfg.min_train + extra, cfg.max_train)


def build_model(scheme: str, cfg: LearnedLabConfig, *, seed: int):
    """A seeded ``TinyTransformer`` with ``scheme``; tables of ``cfg.max_len`` rows."""
    from ..model import TinyTransformer

    check_choice("scheme", scheme, SCHEMES)
    torch.manual_seed(seed)
    return TinyTransformer(
        cfg.vocab_size,
        d_model=cfg.d_model,
        num_heads=cfg.num_heads,
        num_layers=cfg.num_layers,
        max_len=cfg.max_len,
        position=scheme,
        # Vaswani et al. (2017) scale token embeddings by sqrt(d_model); without it the
        # unit-amplitude sinusoids drown the N(0, 0.02) embeddings.
        sinusoidal_scale_input=True,
    )


def train_one(scheme: str, distribution: str, cfg: LearnedLabConfig, *, seed: int):
    """Train one model; return ``(model, lengths, losses)``.

    ``lengths`` (int64, one per step) are the training lengths in the order drawn.
    """
    model = build_model(scheme, cfg, seed=seed)
    lengths: list[int] = []

    def batch(gen):
        length = sample_length(distribution, cfg, gen)
        lengths.append(length)
        return delayed_copy_batch(
            batch_size=cfg.batch_size,
            seq_len=length,
            vocab_size=cfg.vocab_size,
            delay=cfg.delay,
            generator=gen,
        )

    losses = train_model(
        model, batch, steps=cfg.steps, lr=cfg.lr, warmup_steps=cfg.warmup_steps, seed=seed
    )
    return model, torch.tensor(lengths), losses


@torch.no_grad()
def per_position_accuracy(model, cfg: LearnedLabConfig) -> torch.Tensor:
    """Accuracy at every position ``0 .. max_len - 1`` on fresh sequences of ``max_len``.

    The test set is fixed by ``cfg.eval_seed``, the same for every model. Positions
    before ``delay`` have no target and get ``nan``.
    """
    gen = torch.Generator().manual_seed(cfg.eval_seed)
    inputs, targets, mask = delayed_copy_batch(
        batch_size=cfg.eval_batch,
        seq_len=cfg.max_len,
        vocab_size=cfg.vocab_size,
        delay=cfg.delay,
        generator=gen,
    )
    model.eval()
    correct = ((model(inputs).argmax(-1) == targets) & mask).float().sum(0)
    counts = mask.float().sum(0)
    return torch.where(counts > 0, correct / counts.clamp_min(1), torch.nan)


def batches_containing(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """For every position ``0 .. max_len - 1``, the number of training batches long enough
    to contain it."""
    return (lengths[:, None] > torch.arange(max_len)).sum(0)


def offset_similarity(table: torch.Tensor, max_offset: int) -> torch.Tensor:
    """Mean cosine similarity of rows ``p`` and ``p + k`` of ``table``, ``k = 0 .. max_offset``
    (``max_offset`` below the number of rows)."""
    check_int("max_offset", max_offset, minimum=0)
    if max_offset >= len(table):
        raise ValueError(f"max_offset must be < the number of rows {len(table)}, got {max_offset}")
    unit = torch.nn.functional.normalize(table, dim=1)
    return torch.stack(
        [(unit[: len(unit) - k] * unit[k:]).sum(1).mean() for k in range(max_offset + 1)]
    )


def top2_share(table: torch.Tensor) -> float:
    """Share of the variance of the (centred) rows in their top two principal components."""
    s = torch.linalg.svdvals(table - table.mean(0))
    return float((s[:2] ** 2).sum() / (s**2).sum())


def table_stats(initial: torch.Tensor, trained: torch.Tensor, batches: torch.Tensor, steps: int):
    """What chapter 3 measures on a learned table, as a flat dict.

    ``well`` rows are positions ``0 .. W-1`` seen in at least 10 % of the batches;
    ``rare`` rows were in 1 to 4 batches (none under uniform lengths: ``None``);
    ``always`` rows were in every batch; ``never`` rows in none.
    """
    positions = torch.arange(len(batches))
    often = batches >= steps // 10
    well = int(positions[often].max()) + 1
    rare = (batches > 0) & (batches < 5)
    always = batches == steps
    never = batches == 0
    moved = (trained - initial).norm(dim=1)
    sim = offset_similarity(trained[:well], min(10, well - 1))
    return {
        "well_rows": well,
        "sim_offset1": float(sim[1]) if well > 1 else None,
        "sim_offset10": float(sim[10]) if well > 10 else None,
        "sim_offset1_init": float(offset_similarity(initial[:well], 1)[1]),
        "top2_share": top2_share(trained[:well]),
        "top2_share_init": top2_share(initial[:well]),
        "moved_always": float(moved[always].mean()),
        "moved_rare": float(moved[rare].mean()) if rare.any() else None,
        "never_unchanged": bool(torch.equal(trained[never], initial[never])),
        "initial_row_norm": float(initial.norm(dim=1).mean()),
    }


def run_learned_lab(cfg: LearnedLabConfig = SMALL, *, log=None, models=None) -> list[dict]:
    """Train and test every scheme x distribution x seed of ``cfg``; one record each.

    ``models``: a dict that, if given, receives every trained model under the key
    ``(scheme, distribution, seed)``.

    A record holds ``scheme``, ``distribution``, ``seed``, ``accuracy`` (per position,
    ``None`` where there is no target), ``batches`` (per position), ``final_loss`` (mean
    of the last 20 steps), ``table`` (learned only: :func:`table_stats`, else ``None``).
    """
    records = []
    for distribution in cfg.distributions:
        for seed in cfg.seeds:
            for scheme in cfg.schemes:
                model, lengths, losses = train_one(scheme, distribution, cfg, seed=seed)
                if models is not None:
                    models[scheme, distribution, seed] = model
                acc = per_position_accuracy(model, cfg)
                batches = batches_containing(lengths, cfg.max_len)
                stats = None
                if scheme == "learned":
                    initial = build_model(scheme, cfg, seed=seed).pos.table.detach()
                    stats = table_stats(initial, model.pos.table.detach(), batches, cfg.steps)
                records.append(
                    {
                        "scheme": scheme,
                        "distribution": distribution,
                        "seed": seed,
                        "accuracy": [None if math.isnan(a) else round(a, 6) for a in acc.tolist()],
                        "batches": batches.tolist(),
                        "final_loss": round(sum(losses[-20:]) / 20, 6),
                        "table": stats,
                    }
                )
                if log is not None:
                    loss = records[-1]["final_loss"]
                    log(f"{distribution:>9} seed {seed} {scheme:>10}: loss {loss:.3f}")
    return records


def _git_state() -> dict:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def results_document(cfg: LearnedLabConfig, records: list[dict], *, wall_seconds=None) -> dict:
    """Wrap ``records`` with the configuration, seeds, versions, commit, date and machine."""
    from .. import __version__

    return {
        "kind": "learned_lab",
        "config": dataclasses.asdict(cfg),
        "seeds": list(cfg.seeds),
        "versions": {
            "posenc_lib": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "git": _git_state(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
        },
        "wall_seconds": wall_seconds,
        "records": records,
    }


def load_full_results() -> dict:
    """The stored full run (package data), as written by ``scripts/run_learned_lab.py``."""
    text = resources.files(__package__).joinpath("results", FULL_RESULTS).read_text()
    doc = json.loads(text)
    if doc.get("kind") != "learned_lab":
        raise ValueError(f"{FULL_RESULTS} is not a learned-lab results document")
    return doc
