"""Training throughput of the lab model per position scheme: tokens per second of one
optimiser step (forward, backward, AdamW) and the ratio to the same model with no
position scheme ("none").

A control separates the method's cost from the code's: "none-unfused" is the same
no-position model with scaled_dot_product_attention forced onto its math backend (scores,
softmax and weights materialised). Shaw needs the weights for its value term, so no fused
kernel serves it on any device. On the CPU, PyTorch's fused (flash) kernel also refuses a
(heads, q, k) bias and a bias that needs a gradient, so T5 and ALiBi run unfused too, and
"none-unfused" is their floor; ``ratio_to_unfused`` says how far above it each scheme is.
On CUDA the memory-efficient kernel accepts a bias, with its gradient. On an H200
(benchmarks/results/cuda-2026-11-26.json) ALiBi ran below this control (0.85x) but T5 did
not (1.33x; 1.95x "none"). At this size a GPU step is short (a few ms), so per-call
overheads weigh more than on the CPU; which overhead holds T5 back was not measured.

The model is the chapters' TinyTransformer at the issue's reference size (d_model 128,
4 layers, 4 heads, L 256, batch 16) or the lab's own size (``--lab``: the FULL
configuration of posenc_lib.book.training). Schemes are timed round-robin so background
load hits them alike; ratios use the minimum time (interference only adds time).

Usage:
    python benchmarks/bench_training.py                 # CPU, 2 threads
    python benchmarks/bench_training.py --device cuda
    python benchmarks/bench_training.py --quick         # smaller, for a smoke test
"""

from __future__ import annotations

import argparse
import contextlib

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

try:
    from . import common
except ImportError:  # run as a script
    import common

from posenc_lib.book import training

SCHEMES = ("none", "sinusoidal", "learned", "shaw", "t5", "alibi", "rope")


def make_step(
    scheme: str, *, d_model, num_heads, num_layers, seq_len, batch, device, unfused=False
):
    cfg = training.LabConfig(
        train_len=seq_len, d_model=d_model, num_heads=num_heads, num_layers=num_layers
    )
    model = training.build_model(scheme, 100, cfg, seed=0, device=device, max_len=seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 100, (batch, seq_len), generator=gen).to(device)
    y = torch.randint(0, 100, (batch, seq_len), generator=gen).to(device)

    def step():
        with sdpa_kernel(SDPBackend.MATH) if unfused else contextlib.nullcontext():
            loss = training._masked_loss(model(x), y, None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()

    return step


def run(
    device: str = "cpu", *, quick: bool = False, lab: bool = False, min_time: float = 1.0
) -> dict:
    if lab:
        c = training.FULL
        size = dict(
            d_model=c.d_model,
            num_heads=c.num_heads,
            num_layers=c.num_layers,
            seq_len=c.train_len,
            batch=c.batch_size,
        )
    else:
        size = dict(d_model=128, num_heads=4, num_layers=4, seq_len=256, batch=16)
    if quick:
        size.update(num_layers=1, seq_len=64, batch=4)
    fns = {s: make_step(s, device=device, **size) for s in SCHEMES}
    fns["none-unfused"] = make_step("none", device=device, unfused=True, **size)
    times = common.time_many(fns, device=device, rounds=3, min_time=min_time)
    tokens = size["batch"] * size["seq_len"]
    base = times["none"]["min_s"]
    unfused = times["none-unfused"]["min_s"]
    records = [
        {
            "scheme": s,
            **size,
            "median_s": t["median_s"],
            "min_s": t["min_s"],
            "reps": t["reps"],
            "tokens_per_s": tokens / t["min_s"],
            "ratio_to_none": t["min_s"] / base,
            "ratio_to_unfused": t["min_s"] / unfused,
        }
        for s, t in times.items()
    ]
    return {"benchmark": "training", "environment": common.environment(device), "records": records}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lab", action="store_true", help="the lab's FULL model size")
    args = ap.parse_args(argv)
    if torch.device(args.device).type == "cpu":
        torch.set_num_threads(args.threads)
    res = run(args.device, quick=args.quick, lab=args.lab, min_time=0.2 if args.quick else 1.0)
    print(f"{'scheme':>12} {'tokens/s':>10} {'x none':>7} {'x unfused':>9}")
    for r in res["records"]:
        print(
            f"{r['scheme']:>12} {r['tokens_per_s']:>10.0f} {r['ratio_to_none']:>7.2f} "
            f"{r['ratio_to_unfused']:>9.2f}"
        )
    return res


if __name__ == "__main__":
    main()
