"""Run every benchmark in one process and store the results as JSON.

    python benchmarks/run_all.py                  # CPU, stored in benchmarks/results/
    python benchmarks/run_all.py --device cuda    # GPU run (see benchmarks/run_gpu.sh)
    python benchmarks/run_all.py --quick          # CI smoke run: tiny shapes, no compile
                                                  # of the RoPE peers, written to a temp dir

The file is ``benchmarks/results/<device>-<date>.json`` with the device name, versions
(torch, triton, transformers, peers), date, git commit, shapes and every timing record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_bias_attention  # noqa: E402
import bench_rope  # noqa: E402
import bench_tables  # noqa: E402
import bench_training  # noqa: E402
import common  # noqa: E402
import torch  # noqa: E402

BENCHES = {
    "rope": bench_rope,
    "tables": bench_tables,
    "bias_attention": bench_bias_attention,
    "training": bench_training,
}


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (CI)")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=sorted(BENCHES))
    ap.add_argument("--out", type=Path, default=None, help="output JSON path")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="update the sections of an existing output file (for runs in steps)",
    )
    ap.add_argument("--tune", action="store_true", help="also sweep the fused kernel's tiles")
    ap.add_argument(
        "--no-compile", action="store_true", help="RoPE: leave out the torch.compile peers"
    )
    ap.add_argument(
        "--layouts",
        nargs="+",
        choices=["half", "interleaved"],
        default=None,
        help="RoPE pair layouts (default both)",
    )
    ap.add_argument(
        "--min-time", type=float, default=None, help="seconds of timing per implementation and case"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default 1 on the CPU: on a small shared machine a "
        "single thread gives repeatable timings; every implementation gets the same)",
    )
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    out = args.out
    if out is None:
        out = (
            Path(tempfile.gettempdir()) / "posenc_bench_quick.json"
            if args.quick
            else common.result_path(args.device)
        )
    results = {}
    if args.merge and out.exists():
        results = json.loads(out.read_text())
    env = common.environment(args.device)
    if args.merge and "environment" in results:  # keep the first step's start-of-run record
        env["previous_steps"] = results["environment"]
    results.update({"environment": env, "quick": args.quick})
    t0 = time.perf_counter()
    for name in args.only:
        kw = {} if args.min_time is None else {"min_time": args.min_time}
        if name == "rope" and args.tune:
            kw["tune"] = True
        if name == "rope" and args.no_compile:
            kw["compile"] = False
        if name == "rope" and args.layouts:
            kw["layouts"] = tuple(args.layouts)
        if args.quick:
            kw.setdefault("min_time", 0.02)
        t = time.perf_counter()
        results[name] = BENCHES[name].run(args.device, quick=args.quick, **kw)
        results[name]["wall_s"] = time.perf_counter() - t
        print(f"== {name}: {results[name]['wall_s']:.1f} s", flush=True)
    results["wall_s"] = time.perf_counter() - t0
    if hasattr(os, "getloadavg"):  # the load at the end too: a busy machine is noisy
        results["environment"]["load_average_end"] = list(os.getloadavg())
    common.save(results, out)
    if "rope" in results:  # the verdict of this run, and how much its noise allows
        tg = results["rope"]["targets"]
        print(
            f"targets: every case {tg['every_case_at_least_hf_eager']}, geomean "
            f"{tg['geomean_speedup_vs_hf_eager']:.2f}x, copy fraction "
            f"{tg['min_copy_fraction_16k_fp32']}; noisy cases {tg['noisy_cases']} of "
            f"{tg['cases']}"
        )
    if "training" in results:
        for r in results["training"]["records"]:
            print(
                f"training {r['scheme']:>12}: {r['ratio_to_none']:.2f}x none, "
                f"{r['ratio_to_unfused']:.2f}x none-unfused"
            )
    print(f"saved {common.shown(out)} ({results['wall_s']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
