"""Run the labs of chapters 7 and 8 and store their results as package data, in
posenc_lib/book/results/lab/<kind>_<config>.json, with configuration, seeds, device,
machine, versions, git commit (+ dirty flag) and date. The chapters load them with
posenc_lib.book.training.load_stored (importlib.resources), so they run from anywhere.

Usage:
    python scripts/run_lab.py --config full --device cuda     # the stored results
    python scripts/run_lab.py --config small                  # the CI configuration
    python scripts/run_lab.py --only lm retrieval             # a subset of the kinds

Kinds: lm, copy, retrieval (chapter 7), extension (chapter 8). Progress is printed
after every trained model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from posenc_lib.book import training
from posenc_lib.book.lab_copy import run_copy_lab
from posenc_lib.book.lab_extension import run_context_extension
from posenc_lib.book.lab_lm import run_lm_lab
from posenc_lib.book.lab_retrieval import run_retrieval_lab
from posenc_lib.utils import pick_device

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "posenc_lib" / "book" / "results" / "lab"
RUNS = {
    "lm": run_lm_lab,
    "copy": run_copy_lab,
    "retrieval": run_retrieval_lab,
    "extension": run_context_extension,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("small", "full"), default="full")
    parser.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = training.FULL if args.config == "full" else training.SMALL
    device = pick_device(args.device)
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:7.1f} s] {msg}", flush=True)

    for kind in args.only:
        t0 = time.perf_counter()
        records = RUNS[kind](cfg, device=device, log=log)
        doc = training.results_document(
            kind, cfg, records, device=device, wall_seconds=round(time.perf_counter() - t0, 1)
        )
        path = training.save_results(doc, args.out / f"{kind}_{cfg.name}.json")
        log(f"wrote {path} ({len(records)} records, {doc['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
