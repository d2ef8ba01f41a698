"""The language-modelling lab of chapter 7: train each position scheme at ``L`` on the
CPython documentation, then score the same validation characters

- in one window of every length ``L .. 8L`` (what a long context gives the model),
- with a sliding window of ``L`` (the free baseline: the same model, never past ``L``),

and record per-token loss differences between the two on the same tokens, the attention
entropy at every length (how far attention spreads), and, for T5, the effect of giving
the buckets never reached in training the value of the last trained one.
A RoPE model trained at ``ext_factor * L`` with the same number of tokens is the
``"trained_long"`` baseline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from . import data as _data
from .training import SCHEMES, LabConfig, build_model, train_model

__all__ = [
    "corpus",
    "eval_text",
    "token_nll",
    "sliding_window_nll",
    "windowed_sliding_nll",
    "evaluate_lm",
    "lm_metrics",
    "attention_entropy",
    "t5_last_trained_bucket",
    "t5_clamp_untrained_buckets",
    "run_lm_lab",
]


def corpus():
    """``(tokenizer, train_ids, validation_ids)`` of the book's text (last 10 % held out)."""
    text = _data.load_corpus()
    tok = _data.CharTokenizer.from_text(text)
    train, val = _data.split_tokens(tok.encode(text), val_fraction=0.1)
    return tok, train, val


def eval_text(cfg: LabConfig, val: torch.Tensor) -> torch.Tensor:
    """The validation ids every evaluation of chapters 7 and 8 scores: a whole number of
    windows of the longest length ``cfg.max_eval_len`` (``cfg.lm_eval_windows`` of them,
    or as many as fit), plus one id for the last target."""
    n = cfg.max_eval_len
    fit = (val.numel() - 1) // n
    windows = fit if cfg.lm_eval_windows is None else min(fit, cfg.lm_eval_windows)
    if windows < 1:
        raise ValueError(f"validation text has {val.numel()} ids, too few for {n}")
    return val[: windows * n + 1]


@torch.no_grad()
def token_nll(model, text: torch.Tensor, seq_len: int, *, batch_size: int = 32):
    """Loss (nats) of every target of ``text`` read in consecutive windows of ``seq_len``:
    returns a ``(windows, seq_len)`` float64 tensor (row = window, column = position)."""
    x, y = _data.lm_eval_windows(text, seq_len=seq_len)
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i : i + batch_size].to(device)).float()
        nll = F.cross_entropy(
            logits.transpose(1, 2), y[i : i + batch_size].to(device), reduction="none"
        )
        out.append(nll.double().cpu())
    return torch.cat(out)


@torch.no_grad()
def sliding_window_nll(
    model, text: torch.Tensor, window: int, *, stride: int | None = None, batch_size: int = 16
):
    """Loss of every target of ``text`` when the model never sees more than ``window``
    ids: windows of ``window`` moved by ``stride`` (default ``window // 4``); each target
    is scored by the first window that reaches it, so the first ``window`` targets get
    their natural context and every later one between ``window - stride`` and ``window``
    ids. Returns a 1-D float64 tensor aligned with ``text[1:]``."""
    stride = max(1, window // 4) if stride is None else stride
    if not 1 <= stride <= window:
        raise ValueError(f"stride must lie in [1, window={window}], got {stride}")
    n = text.numel() - 1
    if n <= window:
        return token_nll(model, text, n, batch_size=batch_size)[0]
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    idx = torch.tensor(starts)[:, None] + torch.arange(window + 1)
    win = text[idx]
    model.eval()
    device = next(model.parameters()).device
    out = torch.full((n,), float("nan"), dtype=torch.float64)
    covered = 0  # targets before this index are scored already
    for i in range(0, win.shape[0], batch_size):
        w = win[i : i + batch_size].to(device)
        logits = model(w[:, :-1]).float()
        nll = F.cross_entropy(logits.transpose(1, 2), w[:, 1:], reduction="none").double().cpu()
        for j, s in enumerate(starts[i : i + batch_size]):
            # each window scores only the targets no earlier window reached: those
            # with the most context this window can give
            out[covered : s + window] = nll[j, covered - s :]
            covered = s + window
    if torch.isnan(out).any():
        raise RuntimeError("sliding_window_nll left targets unscored")
    return out


def windowed_sliding_nll(
    model,
    text: torch.Tensor,
    seq_len: int,
    window: int,
    *,
    stride: int | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """The sliding window of ``window`` run *inside* each evaluation window of
    ``seq_len`` (restarting at its start), ``(windows, seq_len)``: position ``t`` of a
    window then has the same context as in a full pass for ``t < window`` and the last
    ``window - stride .. window`` ids after that, so the two differ only past
    ``window``. Same rule as :func:`sliding_window_nll`, batched over all windows."""
    if seq_len <= window:
        return token_nll(model, text, seq_len)
    stride = max(1, window // 4) if stride is None else stride
    if not 1 <= stride <= window:
        raise ValueError(f"stride must lie in [1, window={window}], got {stride}")
    n_windows = (text.numel() - 1) // seq_len
    starts = list(range(0, seq_len - window + 1, stride))
    if starts[-1] + window < seq_len:
        starts.append(seq_len - window)
    first, covered = [], 0  # the first target each window scores (no earlier one did)
    for s in starts:
        first.append(covered - s)
        covered = s + window
    glob = (torch.arange(n_windows)[:, None] * seq_len + torch.tensor(starts)).flatten()
    wins = text[glob[:, None] + torch.arange(window + 1)]
    model.eval()
    device = next(model.parameters()).device
    parts = []
    with torch.no_grad():
        for i in range(0, wins.shape[0], batch_size):
            w = wins[i : i + batch_size].to(device)
            logits = model(w[:, :-1]).float()
            parts.append(
                F.cross_entropy(logits.transpose(1, 2), w[:, 1:], reduction="none").double().cpu()
            )
    nll = torch.cat(parts).view(n_windows, len(starts), window)
    out = torch.empty(n_windows, seq_len, dtype=torch.float64)
    for j, (s, f) in enumerate(zip(starts, first, strict=True)):
        out[:, s + f : s + window] = nll[:, j, f:]
    return out


def lm_metrics(model, inputs, targets, *, batch_size: int = 16, bin_width: int | None = None):
    """Mean loss (nats per character) over all positions of ``(inputs, targets)``, and the
    mean per bin of ``bin_width`` positions (``None``: no bins)."""
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros(inputs.shape[1], dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, inputs.shape[0], batch_size):
            x, y = inputs[i : i + batch_size].to(device), targets[i : i + batch_size].to(device)
            nll = F.cross_entropy(model(x).float().transpose(1, 2), y, reduction="none")
            total += nll.double().sum(0).cpu()
    per_pos = total / inputs.shape[0]
    out = {"nll": float(per_pos.mean())}
    if bin_width:
        out["nll_by_position"] = [float(b.mean()) for b in per_pos.split(bin_width)]
        out["bin_width"] = bin_width
    return out


@torch.no_grad()
def attention_entropy(model, inputs: torch.Tensor, *, last: int) -> list[float]:
    """Mean entropy (nats) of the attention distributions of the last ``last`` queries of
    ``inputs``, one value per layer (mean over heads, queries and sequences).

    Recomputes each layer's weights from its input with the layer's own projections,
    rotation and bias, so it measures exactly what the model attends with. A uniform
    distribution over ``n`` keys has entropy ``ln n``.
    """
    from ..attention import causal_mask

    model.eval()
    device = next(model.parameters()).device
    captured = []
    hooks = [
        b.attn.register_forward_pre_hook(lambda mod, args: captured.append((mod, args[0])))
        for b in model.blocks
    ]
    try:
        model(inputs.to(device))
    finally:
        for h in hooks:
            h.remove()
    out = []
    for attn, x in captured:
        b, n, _ = x.shape
        q, k, _v = attn.qkv(x).view(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        if attn.position == "rope":
            q, k = attn.rotary(q, k, offset=0)
        scores = q @ k.transpose(-2, -1)
        if attn.position == "shaw":
            scores = scores + attn.shaw.key_bias(q, n, n, offset=0)
        scores = scores / math.sqrt(attn.head_dim)
        if attn.position == "t5":
            scores = scores + attn.t5(n, n, offset=0)
        if attn.position == "alibi":
            from ..alibi import alibi_bias

            scores = scores + alibi_bias(attn.num_heads, n, n, causal=True, device=x.device)
        scores = scores.masked_fill(~causal_mask(n, n, device=x.device), float("-inf"))
        p = scores[..., -last:, :].float().softmax(-1)
        ent = -(p * p.clamp_min(1e-30).log()).sum(-1)
        out.append(float(ent.mean()))
    return out


def t5_last_trained_bucket(model, train_len: int) -> int:
    """The largest T5 bucket a causal model trained at ``train_len`` ever used (distance
    ``train_len - 1``)."""
    t5 = model.blocks[0].attn.t5
    return int(t5.buckets(train_len, train_len).max())


@torch.no_grad()
def t5_clamp_untrained_buckets(model, train_len: int) -> int:
    """Give every T5 bucket above the last one used in training (at ``train_len``) the
    learned value of that last bucket, in every layer, in place. Returns that bucket."""
    last = t5_last_trained_bucket(model, train_len)
    for block in model.blocks:
        w = block.attn.t5.embedding.weight
        w[last + 1 :] = w[last]
    return last


def _lm_batches(cfg: LabConfig, train, seq_len: int, batch_size: int):
    return lambda g: _data.lm_batch(train, batch_size=batch_size, seq_len=seq_len, generator=g)


def evaluate_lm(
    model,
    cfg: LabConfig,
    text: torch.Tensor,
    lengths: Iterable[int],
    *,
    window: int | None = None,
    entropy: bool = True,
) -> list[dict]:
    """Records of one trained model at every length of ``lengths`` on ``text``: the mean
    loss and its bins of ``L / 2`` positions; the loss of the same targets under a
    sliding window of ``window`` run inside each evaluation window
    (:func:`windowed_sliding_nll`), and the per-bin difference, long window minus sliding
    window (zero before ``window``; negative after it: the long context helps); the
    attention entropy of the last ``L`` queries, per layer."""
    L = cfg.train_len
    window = L if window is None else window
    recs = []
    for n in lengths:
        nll = token_nll(model, text, n)  # (windows, n)
        rec = {
            "eval_len": n,
            "nll": float(nll.mean()),
            "ppl": math.exp(float(nll.mean())),
            "nll_by_position": [float(v.mean()) for v in nll.mean(0).split(L // 2)],
            "bin_width": L // 2,
        }
        rec.update(_window_metrics(model, text, n, window, cfg.window_stride, nll))
        if entropy:
            ents = attention_entropy(model, text[: cfg.entropy_windows * n].view(-1, n), last=L)
            rec["attention_entropy"] = ents
        recs.append(rec)
    return recs


def _window_metrics(model, text, n, window, stride, nll=None) -> dict:
    slide = windowed_sliding_nll(model, text, n, window, stride=stride)
    out = {"nll_window": float(slide.mean()), "ppl_window": math.exp(float(slide.mean()))}
    if nll is not None:
        diff = (nll - slide).mean(0)
        out["delta_by_position"] = [float(v.mean()) for v in diff.split(window // 2)]
        out["delta_beyond_window"] = float(diff[window:].mean()) if n > window else None
        out["nll_beyond_window"] = float(nll[:, window:].mean()) if n > window else None
    return out


def run_lm_lab(
    cfg: LabConfig,
    *,
    schemes: Iterable[str] = SCHEMES,
    seeds=None,
    device=None,
    trained_long: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train each scheme at ``L``; score the same validation text at every ``L * factor``
    (full window and sliding window of ``L``). One record per (scheme, seed, length);
    metrics are ``None`` where the model cannot run (a learned table past its rows).

    With ``trained_long``, also a RoPE model trained at ``ext_factor * L`` on the same
    number of tokens (scheme ``"trained_long"``, sliding window of its own length), and
    for T5 the records of the same model with the untrained buckets clamped
    (scheme ``"t5_clamped"``).
    """
    tok, train, val = corpus()
    L = cfg.train_len
    text = eval_text(cfg, val)
    lengths = [L * f for f in cfg.eval_factors]
    seeds = cfg.seeds if seeds is None else tuple(seeds)
    records = []

    def add(scheme, seed, model, losses, window, train_len):
        for n in lengths:
            rec = {
                "task": "lm",
                "scheme": scheme,
                "seed": seed,
                "train_len": train_len,
                "final_train_loss": losses[-1] if losses else None,
            }
            try:
                rec.update(evaluate_lm(model, cfg, text, [n], window=window)[0])
            except ValueError as err:
                rec.update(eval_len=n, nll=None, ppl=None, error=str(err)[:200])
                rec.update(_window_metrics(model, text, n, window, cfg.window_stride))
            records.append(rec)

    for seed in seeds:
        for scheme in schemes:
            t0 = time.perf_counter()
            model = build_model(scheme, tok.vocab_size, cfg, seed=seed, device=device)
            losses = train_model(
                model,
                _lm_batches(cfg, train, L, cfg.batch_size),
                steps=cfg.lm_steps,
                lr=cfg.lr,
                warmup_steps=cfg.warmup_steps,
                seed=seed,
            )
            add(scheme, seed, model, losses, L, L)
            if scheme == "t5" and trained_long:
                t5_clamp_untrained_buckets(model, L)
                add("t5_clamped", seed, model, losses, L, L)
            if log:
                log(f"lm {scheme:>12} seed {seed}: {time.perf_counter() - t0:.1f} s")
        if trained_long:
            t0 = time.perf_counter()
            n_long = L * cfg.ext_factor
            model = build_model("rope", tok.vocab_size, cfg, seed=seed, device=device)
            losses = train_model(
                model,
                _lm_batches(cfg, train, n_long, max(1, cfg.batch_size // cfg.ext_factor)),
                steps=cfg.lm_steps,
                lr=cfg.lr,
                warmup_steps=cfg.warmup_steps,
                seed=seed,
            )
            add("trained_long", seed, model, losses, n_long, n_long)
            if log:
                log(f"lm trained_long seed {seed}: {time.perf_counter() - t0:.1f} s")
    return records
