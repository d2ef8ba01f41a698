"""Run chapter 3's controlled experiment in its full configuration (three seeds) and
store it as package data, with configuration, seeds, versions, commit, date and machine.

Usage:
    python scripts/run_learned_lab.py            # full run -> posenc_lib/book/results/
    python scripts/run_learned_lab.py --small    # the CI configuration, e.g. to compare

The notebook notebooks/03_learned.ipynb runs the small configuration itself and reads the
full run with ``posenc_lib.book.learned_lab.load_full_results()``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from posenc_lib.book import learned_lab as lab

OUT = Path(__file__).resolve().parent.parent / "posenc_lib" / "book" / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the CI configuration")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = lab.SMALL if args.small else lab.FULL
    t0 = time.perf_counter()
    records = lab.run_learned_lab(cfg, log=lambda msg: print(msg, flush=True))
    doc = lab.results_document(cfg, records, wall_seconds=round(time.perf_counter() - t0, 1))
    name = lab.FULL_RESULTS if cfg.name == "full" else f"learned_lab_{cfg.name}.json"
    path = args.out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path} ({doc['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
