"""What every lab of the long-context chapters shares: the configuration, the seeded
model, the one training loop, and the storage of results with their provenance.

The labs themselves live in :mod:`~posenc_lib.book.lab_lm` (language modelling),
:mod:`~posenc_lib.book.lab_copy` (delayed copy), :mod:`~posenc_lib.book.lab_retrieval`
(repeated block) and :mod:`~posenc_lib.book.lab_extension` (RoPE context extension).

Two configurations: :data:`SMALL` (what the chapters run live in continuous integration,
within a minute per chapter on a 2-core CPU) and :data:`FULL` (longer training, three
seeds, all the validation text; ``scripts/run_lab.py --config full`` stores it as package
data, see :func:`load_stored`). Every run is seeded: the seed fixes the initial weights
(``torch.manual_seed``) and the order of the batches (an explicit ``torch.Generator``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from .._validation import check_choice, check_int
from ..utils import pick_device

__all__ = [
    "SCHEMES",
    "LabConfig",
    "SMALL",
    "FULL",
    "get_config",
    "build_model",
    "train_model",
    "results_document",
    "save_results",
    "load_results",
    "load_stored",
    "load_replicate",
    "REPLICATE_CONFIG",
    "stored_path",
    "summarise",
]

#: The position schemes of the lab, in the order the chapters plot them.
SCHEMES = ("none", "sinusoidal", "learned", "shaw", "t5", "alibi", "rope")


@dataclass(frozen=True)
class LabConfig:
    """Everything that defines a lab run (saved next to its results)."""

    name: str = "small"
    train_len: int = 64  # L: training length, in characters / symbols
    eval_factors: tuple[int, ...] = (1, 2, 4, 8)  # evaluate at L, 2L, 4L, 8L
    d_model: int = 64
    num_heads: int = 2  # head_dim = d_model / num_heads = 32: 16 RoPE pairs
    num_layers: int = 2
    batch_size: int = 16
    lm_steps: int = 130  # SMALL: keeps chapter 7's live run within ~45 s on 2 cores
    copy_steps: int = 40
    retrieval_steps: int = 40
    lr: float = 3e-3
    warmup_steps: int = 30
    seeds: tuple[int, ...] = (0,)
    # Evaluation windows of the longest length cut from the start of the validation text
    # (None: all of it). Every length, and both chapters, score the same characters.
    lm_eval_windows: int | None = 4
    entropy_windows: int = 1  # windows used to measure attention entropy
    # The sliding-window baseline moves by L / window_stride_div: each target past L
    # keeps between L - stride and L characters of context.
    window_stride_div: int = 4
    copy_eval_batch: int = 32
    copy_vocab: int = 16
    copy_delay: int = 5
    retrieval_fillers: int = 16  # filler symbols of the repeated-block task
    retrieval_keys: int = 16  # key symbols (a key uses each at most once)
    # symbols in the repeated block; 1 is a passkey (marker + one key): a 2-layer model
    # learns it in about 100 steps, while blocks of 6 or 16 keys needed more than 600
    retrieval_block: int = 1
    retrieval_batch_size: int = 32
    retrieval_eval_batch: int = 16
    # distances between the two copies of the block, in multiples of L
    retrieval_distances: tuple[float, ...] = (0.25, 0.5, 0.75, 1.5, 3.0, 6.0)
    ext_factor: int = 4  # context extension: the target length is ext_factor * L
    finetune_steps: int = 20  # short fine-tune after scaling (0: none)
    finetune_lr: float = 1e-3
    # YaRN's beta_fast / beta_slow are turn counts within the original length, tuned by
    # its authors for L0 of thousands. Scaled by L / 256 they select the same pairs as the
    # published 32 / 1 select in a head of this size trained at 256 (stated in chapter 8).
    yarn_beta_reference_len: int = 256
    dynamic_windows: int = 2  # windows for the three evaluation modes of dynamic NTK
    # Multiply token embeddings by sqrt(d_model) before adding the sinusoidal table, as in
    # Vaswani et al. (2017); without it the unit-amplitude table drowns the N(0, 0.02)
    # embeddings and the sinusoidal model barely trains within these budgets.
    sinusoidal_scale_input: bool = True

    def __post_init__(self):
        check_int("train_len", self.train_len, minimum=8)
        for f in self.eval_factors:
            check_int("eval_factors[i]", f, minimum=1)
        check_int("ext_factor", self.ext_factor, minimum=1)
        check_int("d_model", self.d_model, minimum=2)
        check_int("num_heads", self.num_heads, minimum=1)
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model must be divisible by num_heads, got {self.d_model}, {self.num_heads}"
            )
        if self.copy_delay >= self.train_len:
            raise ValueError(f"copy_delay must be < train_len, got {self.copy_delay}")
        if self.retrieval_block > self.retrieval_keys:
            raise ValueError(
                f"retrieval_block must be <= retrieval_keys, got {self.retrieval_block}"
            )
        if self.lm_eval_windows is not None:
            check_int("lm_eval_windows", self.lm_eval_windows, minimum=1)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def window_stride(self) -> int:
        return max(1, self.train_len // self.window_stride_div)

    @property
    def max_eval_len(self) -> int:
        return self.train_len * max(max(self.eval_factors), self.ext_factor)

    @property
    def yarn_betas(self) -> tuple[float, float]:
        """``(beta_fast, beta_slow)`` used for YaRN: 32 and 1 scaled by L / 256."""
        s = self.train_len / self.yarn_beta_reference_len
        return 32.0 * s, 1.0 * s


#: The CI configuration, what the chapters run live (within a minute per chapter).
SMALL = LabConfig()
#: The full configuration (three seeds, longer training, all the validation text).
FULL = LabConfig(
    name="full",
    train_len=128,
    num_layers=2,
    batch_size=16,
    lm_steps=800,
    copy_steps=300,
    retrieval_steps=400,
    warmup_steps=50,
    seeds=(0, 1, 2),
    lm_eval_windows=None,
    entropy_windows=4,
    copy_eval_batch=128,
    retrieval_eval_batch=128,
    finetune_steps=100,
    dynamic_windows=4,
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
    """
    from ..model import TinyTransformer

    check_choice("scheme", scheme, SCHEMES)
    if max_len is None:
        max_len = cfg.max_eval_len
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
        losses.append(loss.detach())
    model.eval()
    # one synchronisation at the end, not one per step (matters on a GPU)
    return [float(v) for v in torch.stack(losses).cpu()] if losses else []


# ------------------------------------------------------------------------------ storage


def _git_state() -> dict:
    """Commit and dirty flag of the repository holding this file (None outside git)."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def results_document(
    kind: str,
    cfg: LabConfig,
    records: list[dict],
    *,
    device=None,
    wall_seconds: float | None = None,
) -> dict:
    """Wrap ``records`` with what is needed to reproduce and judge them: configuration,
    seeds, device and machine, versions, commit (and whether the tree was dirty), date."""
    from .. import __version__
    from . import data as _data

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
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "posenc_lib": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "git": _git_state(),
        "corpus": _data.CORPUS_SOURCE,
        "corpus_sha256": _data.CORPUS_SHA256,
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


#: The lab documents stored as package data, ``posenc_lib/book/results/lab/<kind>_full.json``.
STORED_KINDS = ("lm", "copy", "retrieval", "extension")


def stored_path(kind: str, config: str = "full"):
    """Where the stored document of ``kind`` lives inside the installed package."""
    check_choice("kind", kind, STORED_KINDS)
    return resources.files("posenc_lib.book") / "results" / "lab" / f"{kind}_{config}.json"


def load_stored(kind: str, config: str = "full") -> dict | None:
    """The stored document of ``kind`` (package data), or None if it was not stored."""
    path = stored_path(kind, config)
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    for key in ("config", "records", "versions", "device"):
        if key not in doc:
            raise ValueError(f"{path} is not a results document: no {key!r} key")
    return doc


#: The stored full run was repeated on other hardware (a 2-core CPU instead of one H200,
#: same configuration and seeds). The two differ in float rounding and in PyTorch version
#: (2.11 and 2.13), and the H200 run read Python 3.12.3's corpus: a claim about the stored
#: run that also holds on the replicate does not hang on that one run. The replicate
#: shares its seeds, so it is not a set of new, independent draws.
REPLICATE_CONFIG = "full_cpu"


def load_replicate(kind: str) -> dict | None:
    """The replicate of the stored full run of ``kind`` (see :data:`REPLICATE_CONFIG`),
    or None if it was not stored."""
    return load_stored(kind, REPLICATE_CONFIG)


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
