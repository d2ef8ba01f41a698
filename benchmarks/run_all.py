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
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_bias_attention  # noqa: E402
import bench_rope  # noqa: E402
import bench_tables  # noqa: E402
import common  # noqa: E402
import torch  # noqa: E402

BENCHES = {"rope": bench_rope, "tables": bench_tables, "bias_attention": bench_bias_attention}


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
    results.update({"environment": common.environment(args.device), "quick": args.quick})
    t0 = time.perf_counter()
    for name in args.only:
        kw = {} if args.min_time is None else {"min_time": args.min_time}
        if name == "rope" and args.tune:
            kw["tune"] = True
        if args.quick:
            kw.setdefault("min_time", 0.02)
        t = time.perf_counter()
        results[name] = BENCHES[name].run(args.device, quick=args.quick, **kw)
        results[name]["wall_s"] = time.perf_counter() - t
        print(f"== {name}: {results[name]['wall_s']:.1f} s", flush=True)
    results["wall_s"] = time.perf_counter() - t0
    common.save(results, out)
    print(f"saved {out} ({results['wall_s']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
