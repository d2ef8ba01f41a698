"""Copy a GPU benchmark run into the package, trimmed to what the chapters read.

    python scripts/ship_gpu_results.py benchmarks/results/cuda-2026-11-26.json

The full run (every implementation, ~0.5 MB) stays in benchmarks/results/; the package
copy (posenc_lib/book/results/bench/, same file name) keeps the environment, the RoPE
records of the copy, the library, eager Hugging Face and the kernel's tile sweep, with
the run's targets and the names of every implementation that ran, and every
bias-attention and training record. "Making it fast" reads
it by file name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "posenc_lib" / "book" / "results" / "bench"
ROPE_IMPLS = ("copy", "posenc_lib", "hf_eager")


def trim(run: dict) -> dict:
    out = {k: run[k] for k in ("environment", "bias_attention", "training") if k in run}
    if "rope" in run:
        rope = dict(run["rope"])
        rope["implementations"] = sorted({r["impl"] for r in rope["records"]})  # all that ran
        rope["records"] = [
            r
            for r in rope["records"]
            if r["impl"] in ROPE_IMPLS or r["impl"].startswith("posenc_lib_fused_bs")
        ]
        out["rope"] = rope
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    for path in ap.parse_args(argv).runs:
        dest = DEST / path.name
        dest.write_text(json.dumps(trim(json.loads(path.read_text())), separators=(",", ":")))
        print(f"{dest.relative_to(ROOT)}: {dest.stat().st_size / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
