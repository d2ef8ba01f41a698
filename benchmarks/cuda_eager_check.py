"""Short GPU check of RoPE's eager path against eager Hugging Face and the fused kernel.

The eager path used to loop in Python over blocks of positions for half precision
(169 ms against 1.93 ms for Hugging Face at S = 32k, bf16, on an H200). This script
times, side by side in one process (medians), a plain copy, ``apply_rope`` (eager),
``apply_rope_fast`` (the fused Triton kernel) and Hugging Face's Llama formula, for
q (32 heads) and k (8 heads), head_dim 128, S = 8k and 32k, float32 and bfloat16,
forward and forward + backward, and writes ``cuda-eager-<date>.json`` (to ``$OUT`` when
set, else benchmarks/results/).

Usage: ``python benchmarks/cuda_eager_check.py``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_rope  # noqa: E402
import common  # noqa: E402

import posenc_lib as pe  # noqa: E402
from posenc_lib.rope_triton import apply_rope_fast  # noqa: E402


def main() -> Path:
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    device = torch.device("cuda")
    records = []
    for seq in (8192, 32768):
        for dtype in (torch.float32, torch.bfloat16):
            for p in ("fwd", "fwd+bwd"):
                grad = p == "fwd+bwd"
                t = bench_rope.make_inputs(1, 32, 8, 128, seq, dtype, device, grad=grad)
                if grad:
                    t["gq"], t["gk"] = torch.randn_like(t["q"]), torch.randn_like(t["k"])
                impls = {
                    "copy": lambda t: lambda: (t["q_out"].copy_(t["q"]), t["k_out"].copy_(t["k"])),
                    "posenc_lib_eager": lambda t: (
                        lambda: (
                            pe.apply_rope(t["q"], t["cos"], t["sin"]),
                            pe.apply_rope(t["k"], t["cos"], t["sin"]),
                        )
                    ),
                    "posenc_lib_fused": lambda t: (
                        lambda: (
                            apply_rope_fast(t["q"], t["cos"], t["sin"]),
                            apply_rope_fast(t["k"], t["cos"], t["sin"]),
                        )
                    ),
                    "hf_eager": lambda t: (
                        lambda: apply_rotary_pos_emb(t["q"], t["k"], t["cos_hf"], t["sin_hf"])
                    ),
                }
                fns = {
                    n: (bench_rope._with_backward(f, t, n) if grad else f(t))
                    for n, f in impls.items()
                }
                with torch.enable_grad() if grad else torch.no_grad():
                    times = common.time_many(fns, device=device, min_time=0.2)
                for name, tm in times.items():
                    records.append(
                        {
                            "seq": seq,
                            "dtype": str(dtype).removeprefix("torch."),
                            "pass": p,
                            "impl": name,
                            **tm,
                            "speedup_vs_hf_eager": times["hf_eager"]["median_s"] / tm["median_s"],
                        }
                    )
                print(
                    f"s={seq:6d} {str(dtype)[6:]:8s} {p:7s} "
                    + " ".join(f"{n}={v['median_s'] * 1e3:.3f}ms" for n, v in times.items()),
                    flush=True,
                )
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else common.RESULTS_DIR
    path = out_dir / common.result_path("cuda", tag="-eager").name
    return common.save({"environment": common.environment(device), "records": records}, path)


if __name__ == "__main__":
    print("saved", common.shown(main()))
