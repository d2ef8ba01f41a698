"""Run the length-generalisation lab and the RoPE context-extension experiment, and store
the results as JSON in data/lab/ (with configuration, seeds, device, versions and date).

Usage:
    python scripts/run_lab.py                  # full configuration (the stored results)
    python scripts/run_lab.py --small          # the CI configuration, e.g. to compare
    python scripts/run_lab.py --only lm copy   # a subset: lm, copy, extension
    python scripts/run_lab.py --device cuda    # default: CUDA if present, else the CPU

Files: data/lab/{lm,copy,extension}_<config>.json. The chapters
notebooks/07_length_generalisation and 08_context_extension plot them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from posenc_lib.book import experiments as ex
from posenc_lib.utils import pick_device

ROOT = Path(__file__).resolve().parent.parent
RUNS = {
    "lm": ("lm", ex.run_lm_lab),
    "copy": ("copy", ex.run_copy_lab),
    "extension": ("extension", ex.run_context_extension),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the CI configuration")
    parser.add_argument("--only", nargs="+", choices=sorted(RUNS), default=sorted(RUNS))
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "lab")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = ex.SMALL if args.small else ex.FULL
    device = pick_device(args.device)
    for key in args.only:
        stem, fn = RUNS[key]
        t0 = time.perf_counter()
        records = fn(cfg, device=device, log=lambda msg: print(msg, flush=True))
        doc = ex.results_document(
            stem, cfg, records, device=device, wall_seconds=round(time.perf_counter() - t0, 1)
        )
        path = ex.save_results(doc, args.out / f"{stem}_{cfg.name}.json")
        print(f"wrote {path} ({len(records)} records, {doc['wall_seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
