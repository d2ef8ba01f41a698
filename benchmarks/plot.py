"""Plot stored benchmark results: ``python benchmarks/plot.py [--device cpu|cuda]``.

Writes PNG figures to ``benchmarks/results/figures/<device>-*.png`` from the latest
``benchmarks/results/<device>-<date>.json`` (or ``--file``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def geomean(xs):
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def plot_rope_bandwidth(res, ax, *, dtype="float32", layout="half", passes="fwd", head_dim=128):
    recs = [
        r
        for r in res["rope"]["records"]
        if r["dtype"] == dtype
        and r["layout"] == layout
        and r["pass"] == passes
        and r["head_dim"] == head_dim
    ]
    by_impl = defaultdict(list)
    for r in recs:
        by_impl[r["impl"]].append((r["seq"], r["bandwidth_Bps"] / 1e9))
    for impl, pts in sorted(by_impl.items()):
        pts.sort()
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker="o",
            ls="--" if impl == "copy" else "-",
            label=impl,
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("achieved bandwidth (GB/s)")
    ax.set_title(f"RoPE on q and k, {passes}, {dtype}, {layout}, head_dim {head_dim}")
    ax.legend(fontsize=7)


def plot_rope_speedup(res, ax):
    by_impl = defaultdict(list)
    for r in res["rope"]["records"]:
        by_impl[r["impl"]].append(r["speedup_vs_hf_eager"])
    names = sorted(by_impl, key=lambda n: geomean(by_impl[n]))
    ax.barh(names, [geomean(by_impl[n]) for n in names], color="#0072B2")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("speed-up over eager Hugging Face (geometric mean over cases)")


def plot_bias_attention(res, ax):
    for scheme in ("alibi", "t5", "shaw"):
        for backend, ls in (("sdpa", "-"), ("flex", "--")):
            pts = sorted(
                (r["seq"], r["min_s"] * 1e3)
                for r in res["bias_attention"]["records"]
                if r["scheme"] == scheme and r["backend"] == backend and r["status"] == "ok"
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), ls=ls, marker="o", label=f"{scheme} {backend}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("time per call (ms)")
    ax.legend(fontsize=7, ncol=2)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--file", type=Path, default=None)
    args = ap.parse_args(argv)
    res = json.loads(args.file.read_text()) if args.file else common.load_latest(args.device)
    out = common.RESULTS_DIR / "figures"
    out.mkdir(parents=True, exist_ok=True)
    jobs = {
        "rope-bandwidth": plot_rope_bandwidth,
        "rope-speedup": plot_rope_speedup,
        "bias-attention": plot_bias_attention,
    }
    for name, fn in jobs.items():
        key = {"rope-bandwidth": "rope", "rope-speedup": "rope"}.get(name, "bias_attention")
        if key not in res:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        fn(res, ax)
        fig.tight_layout()
        path = out / f"{args.device}-{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print("wrote", common.shown(path))


if __name__ == "__main__":
    main()
