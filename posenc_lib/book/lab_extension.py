"""The context-extension lab of chapter 8: a RoPE model trained at ``L`` reads
``s L`` (``s = ext_factor``) after its frequencies are rescaled by each recipe, with and
without a short fine-tune at ``s L``, next to the baselines every verdict needs:

- the unscaled model with a sliding window of ``L`` (free);
- the *control*: the same fine-tuning steps spent at ``L``, then a sliding window;
- a RoPE model trained at ``s L`` from the start on the same number of characters.

The language model is scored on the validation text of chapter 7 (same characters); the
retrieval model of chapter 7 (repeated block) is scaled the same way and scored by
accuracy against distance. Also: the three ways of evaluating dynamic NTK, YaRN with and
without its attention temperature, and attention entropy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from .._validation import check_choice
from . import data as _data
from .lab_lm import attention_entropy, corpus, eval_text, token_nll, windowed_sliding_nll
from .lab_retrieval import eval_batches, evaluate_retrieval, train_retrieval
from .training import LabConfig, build_model, train_model

__all__ = [
    "EXTENSION_METHODS",
    "scaling_dict",
    "angle_coverage",
    "dynamic_modes_nll",
    "run_context_extension",
]

#: Recipes for a trained RoPE model ("none" keeps the frequencies). LongRoPE is left out:
#: its per-pair factors come from a search on the target model, which we do not run.
EXTENSION_METHODS = ("none", "linear", "ntk", "dynamic", "yarn", "llama3")
#: ... and the ablation of chapter 8: YaRN with its attention temperature switched off.
_ALL_METHODS = EXTENSION_METHODS + ("yarn_no_temp",)


def scaling_dict(method: str, *, factor: float, original_len: int, cfg: LabConfig | None = None):
    """The Hugging-Face-style ``rope_scaling`` dict of ``method`` (``None`` for "none").

    With ``cfg``, YaRN uses ``cfg.yarn_betas`` (the published 32 / 1 scaled by
    ``L / 256``); without it, the published defaults.
    """
    check_choice("method", method, _ALL_METHODS)
    if method == "none":
        return None
    rope_type = "yarn" if method == "yarn_no_temp" else method
    out = {
        "rope_type": rope_type,
        "factor": float(factor),
        "original_max_position_embeddings": int(original_len),
    }
    if method == "llama3":
        out.update(low_freq_factor=1.0, high_freq_factor=4.0)
    if rope_type == "yarn" and cfg is not None:
        out.update(beta_fast=cfg.yarn_betas[0], beta_slow=cfg.yarn_betas[1])
    if method == "yarn_no_temp":
        out["attention_factor"] = 1.0
    return out


def angle_coverage(
    head_dim: int, *, base: float, train_len: int, target_len: int, scaling: dict | None = None
) -> torch.Tensor:
    """Per pair, the largest angle reached at ``target_len`` with ``scaling`` divided by
    the largest angle seen in training at ``train_len`` (unscaled), both as arcs of a
    circle: a pair that turned fully in training has seen every angle (coverage 1 for
    every rotation, returned as ``min(1, ...)`` never above 1). Values above 1 mean
    rotations never seen in training."""
    from ..rope import rope_inv_freq

    theta0, _ = rope_inv_freq(head_dim, base=base)
    theta1, _ = rope_inv_freq(head_dim, base=base, scaling=scaling, seq_len=target_len)
    seen = ((train_len - 1) * theta0.double()).clamp(max=2 * math.pi)
    reach = ((target_len - 1) * theta1.double()).clamp(max=2 * math.pi)
    return reach / seen


@torch.no_grad()
def dynamic_modes_nll(model, inputs, targets, *, start: int) -> dict:
    """Mean loss on targets at positions ``>= start`` for the model's current scaling,
    computed three ways: one pass over the whole window; per prefix (each target
    predicted by a separate pass over exactly its prefix, so dynamic NTK uses the factor
    of that prefix length); and decoding with a KV cache, one token at a time (cached
    keys keep the rotation of the length at which they were computed)."""
    model.eval()
    device = next(model.parameters()).device
    x, y = inputs.to(device), targets.to(device)
    n = x.shape[1]

    def nll(logits, tgt):
        return F.cross_entropy(logits.float().transpose(1, 2), tgt, reduction="none")

    one = nll(model(x), y)[:, start:].mean()
    prefix = torch.stack(
        [nll(model(x[:, : t + 1])[:, -1:], y[:, t : t + 1])[:, 0] for t in range(start, n)], 1
    ).mean()
    cache = model.new_kv_cache()
    steps = [nll(model(x[:, t : t + 1], kv_cache=cache), y[:, t : t + 1])[:, 0] for t in range(n)]
    kv = torch.stack(steps[start:], 1).mean()
    return {"one_pass": float(one), "per_prefix": float(prefix), "kv_cache": float(kv)}


def _record(method, stage, seed, cfg, n, nll, **extra):
    per_pos = nll.mean(0)
    return {
        "task": "context_extension",
        "scheme": "rope",
        "method": method,
        "stage": stage,
        "seed": seed,
        "train_len": cfg.train_len,
        "eval_len": n,
        "nll": float(nll.mean()),
        "ppl": math.exp(float(nll.mean())),
        "nll_by_position": [float(v.mean()) for v in per_pos.split(cfg.train_len // 2)],
        "bin_width": cfg.train_len // 2,
        **extra,
    }


def run_context_extension(
    cfg: LabConfig,
    *,
    methods: Iterable[str] = _ALL_METHODS,
    seeds=None,
    device=None,
    finetune_steps: int | None = None,
    retrieval: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run chapter 8's experiment; one flat record per measurement (see the module
    docstring). ``task`` tells the kinds apart: ``"context_extension"`` (perplexity),
    ``"ext_retrieval"`` (accuracy against distance) and ``"dynamic_modes"``."""
    tok, train, val = corpus()
    seeds = cfg.seeds if seeds is None else tuple(seeds)
    ft_steps = cfg.finetune_steps if finetune_steps is None else finetune_steps
    L, s = cfg.train_len, cfg.ext_factor
    n_ext = L * s
    text = eval_text(cfg, val)
    ent_x = text[: cfg.entropy_windows * n_ext].view(-1, n_ext)
    records = []

    def lm_batches(n, batch):
        return lambda g: _data.lm_batch(train, batch_size=batch, seq_len=n, generator=g)

    for seed in seeds:
        t0 = time.perf_counter()
        model = build_model("rope", tok.vocab_size, cfg, seed=seed, device=device)
        train_model(
            model,
            lm_batches(L, cfg.batch_size),
            steps=cfg.lm_steps,
            lr=cfg.lr,
            warmup_steps=cfg.warmup_steps,
            seed=seed,
        )
        trained = {k: v.clone() for k, v in model.state_dict().items()}
        ent_L = attention_entropy(model, text[: cfg.entropy_windows * L].view(-1, L), last=L)
        # the free baseline: the unscaled model never reads more than L
        slide = windowed_sliding_nll(model, text, n_ext, L, stride=cfg.window_stride)
        for method in methods:
            scaling = scaling_dict(method, factor=s, original_len=L, cfg=cfg)
            stages = [("none", 0)]
            if ft_steps and method != "yarn_no_temp":
                stages.append(("finetuned", ft_steps))
            for stage, steps in stages:
                model.load_state_dict(trained)
                model.set_rope_scaling(scaling)
                if steps:
                    train_model(
                        model,
                        lm_batches(n_ext, max(1, cfg.batch_size // s)),
                        steps=steps,
                        lr=cfg.finetune_lr,
                        warmup_steps=max(1, steps // 10),
                        seed=seed + 1,
                    )
                for n in (L, n_ext):
                    nll = token_nll(model, text, n)
                    extra = {"scaling": scaling}
                    if n == n_ext:
                        extra["attention_entropy"] = attention_entropy(model, ent_x, last=L)
                        if method == "none" and stage == "none":
                            extra["nll_window"] = float(slide.mean())
                            extra["delta_beyond_window"] = float((nll - slide)[:, L:].mean())
                            extra["attention_entropy_at_L"] = ent_L
                    records.append(_record(method, stage, seed, cfg, n, nll, **extra))
            model.set_rope_scaling(None)
        # the control: the same fine-tuning steps, on the same number of characters,
        # spent at L without scaling; then read with a sliding window of L
        if ft_steps:
            model.load_state_dict(trained)
            train_model(
                model,
                lm_batches(L, cfg.batch_size),
                steps=ft_steps,
                lr=cfg.finetune_lr,
                warmup_steps=max(1, ft_steps // 10),
                seed=seed + 1,
            )
            nll = token_nll(model, text, n_ext)
            ctrl = windowed_sliding_nll(model, text, n_ext, L, stride=cfg.window_stride)
            records.append(
                _record(
                    "none",
                    "control_at_L",
                    seed,
                    cfg,
                    n_ext,
                    nll,
                    nll_window=float(ctrl.mean()),
                    finetune_steps=ft_steps,
                    delta_beyond_window=float((nll - ctrl)[:, L:].mean()),
                )
            )
        # the trained-long baseline: RoPE trained at s L on the same number of characters
        model_long = build_model("rope", tok.vocab_size, cfg, seed=seed, device=device)
        train_model(
            model_long,
            lm_batches(n_ext, max(1, cfg.batch_size // s)),
            steps=cfg.lm_steps,
            lr=cfg.lr,
            warmup_steps=cfg.warmup_steps,
            seed=seed,
        )
        for n in (L, n_ext):
            records.append(
                _record("none", "trained_long", seed, cfg, n, token_nll(model_long, text, n))
            )
        # dynamic NTK, three evaluation modes, on the first windows of s L
        x, y = _data.lm_eval_windows(text, seq_len=n_ext, max_windows=cfg.dynamic_windows)
        for method in ("none", "dynamic"):
            model.load_state_dict(trained)
            model.set_rope_scaling(scaling_dict(method, factor=s, original_len=L, cfg=cfg))
            for mode, v in dynamic_modes_nll(model, x, y, start=L).items():
                records.append(
                    {
                        "task": "dynamic_modes",
                        "method": method,
                        "mode": mode,
                        "seed": seed,
                        "train_len": L,
                        "eval_len": n_ext,
                        "nll": v,
                        "ppl": math.exp(v),
                    }
                )
        model.set_rope_scaling(None)
        if log:
            log(f"extension (language model) seed {seed}: {time.perf_counter() - t0:.1f} s")
        if retrieval:
            t0 = time.perf_counter()
            evals = eval_batches(cfg, seed, seq_len=n_ext)
            rmodel, _ = train_retrieval("rope", cfg, seed=seed, device=device)
            for method in methods:
                rmodel.set_rope_scaling(scaling_dict(method, factor=s, original_len=L, cfg=cfg))
                for rec in evaluate_retrieval(rmodel, cfg, evals, window=L):
                    records.append(
                        {
                            "task": "ext_retrieval",
                            "method": method,
                            "seed": seed,
                            "train_len": L,
                            **rec,
                        }
                    )
            rlong, _ = train_retrieval("rope", cfg, seed=seed, device=device, train_len=n_ext)
            for rec in evaluate_retrieval(rlong, cfg, evals, window=n_ext):
                records.append(
                    {
                        "task": "ext_retrieval",
                        "method": "trained_long",
                        "seed": seed,
                        "train_len": n_ext,
                        **rec,
                    }
                )
            if log:
                log(f"extension (retrieval) seed {seed}: {time.perf_counter() - t0:.1f} s")
    return records
