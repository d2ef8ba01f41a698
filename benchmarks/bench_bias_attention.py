"""Benchmark: attention with position biases, materialised bias vs FlexAttention score_mod.

For ALiBi (causal), T5 (bidirectional, unscaled logits) and Shaw (key-side relative
embeddings, K = 16), at increasing sequence length: ``attention_with_bias(...,
backend="sdpa")`` builds the ``(heads or batch x heads, s, s)`` bias and calls
``scaled_dot_product_attention``; ``backend="flex"`` runs the compiled FlexAttention with a
``score_mod`` and no ``s x s`` tensor. For the materialised bias, building it and
attending with it are timed separately as well (``build_s``, ``attend_s``): a model
builds the bias once per forward and every layer attends with it. Reported: time, peak
memory on CUDA, and the bias size against the device memory (where it stops fitting).
On CUDA an out-of-memory error is recorded as ``"oom"``; on the CPU a materialised bias
larger than a quarter of the RAM is not attempted.
"""

from __future__ import annotations

import argparse

import torch

try:
    from . import common
except ImportError:  # run as a script
    import common

import torch.nn.functional as F

from posenc_lib.flex_bias import attention_with_bias, flex_attention_available, materialised_bias

SEQS = {
    "cuda": [1024, 4096, 8192, 16_384, 32_768, 65_536],
    "cpu": [256, 1024, 2048],
    "quick": [128],
}


def make_inputs(batch, heads, seq, head_dim, dtype, device):
    gen = torch.Generator(device=device).manual_seed(0)
    q, k, v = (
        torch.randn(batch, heads, seq, head_dim, generator=gen, device=device, dtype=dtype)
        for _ in range(3)
    )
    extras = {
        "alibi": {
            "slopes": torch.tensor(
                [2.0 ** (-8 * (h + 1) / heads) for h in range(heads)], device=device
            ),
            "causal": True,
        },
        "t5": {
            "bias_table": torch.randn(32, heads, generator=gen, device=device),
            "scale": 1.0,
            "bidirectional": True,
        },
        "shaw": {"rel_table": torch.randn(33, head_dim, generator=gen, device=device, dtype=dtype)},
    }
    return (q, k, v), extras


def bias_bytes(scheme, batch, heads, seq, itemsize) -> int:
    """Size of the materialised bias: (heads, s, s), or (batch, heads, s, s) for Shaw."""
    return (batch if scheme == "shaw" else 1) * heads * seq * seq * itemsize


def _build_and_attend(scheme, q, k, v, extras, device, min_time) -> dict:
    """Median seconds to build the materialised bias, and to attend with a built one."""
    kw = dict(extras[scheme])
    causal = kw.pop("causal", False)
    if scheme == "shaw":
        kw.update(q=q, scale=q.shape[-1] ** -0.5)  # attention_with_bias's default scale
    seq = q.shape[-2]

    def build():
        return materialised_bias(scheme, q_len=seq, kv_len=seq, causal=causal, **kw)

    bias = build().to(q.dtype)
    scale = kw.get("scale") if scheme == "t5" else None  # T5: unscaled logits

    def attend():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)

    b = common.time_fn(build, device=device, warmup=1, min_time=min_time / 2)
    a = common.time_fn(attend, device=device, warmup=1, min_time=min_time / 2)
    return {"build_s": b["median_s"], "attend_s": a["median_s"]}


def run(device="cpu", *, quick=False, min_time=0.2, log=print) -> dict:
    device = torch.device(device)
    seqs = SEQS["quick" if quick else device.type]
    batch, heads, head_dim = (
        (1, 4, 32) if quick else ((1, 16, 64) if device.type == "cuda" else (1, 8, 64))
    )
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    backends = ["sdpa"] + (["flex"] if flex_attention_available() else [])
    mem = common.device_memory_bytes(device)
    records = []
    for scheme in ("alibi", "t5", "shaw"):
        for seq in seqs:
            (q, k, v), extras = make_inputs(batch, heads, seq, head_dim, dtype, device)
            nbytes = bias_bytes(scheme, batch, heads, seq, torch.finfo(dtype).bits // 8)
            for backend in backends:
                if backend == "flex":  # fresh compile per shape: static shapes, and dynamo's
                    torch._dynamo.reset()  # recompile limit is never reached
                rec = {
                    "scheme": scheme,
                    "seq": seq,
                    "backend": backend,
                    "batch": batch,
                    "heads": heads,
                    "head_dim": head_dim,
                    "dtype": str(dtype).removeprefix("torch."),
                    "bias_bytes": nbytes,
                    "bias_fits": nbytes < mem,
                }
                if backend == "sdpa" and device.type == "cpu" and nbytes > mem // 4:
                    records.append(dict(rec, status="not attempted: bias > RAM / 4"))
                    continue

                def fn(scheme=scheme, backend=backend, q=q, k=k, v=v, extras=extras):
                    return attention_with_bias(
                        q, k, v, scheme=scheme, backend=backend, **extras[scheme]
                    )

                try:
                    out = fn()  # compiles the flex kernel for this shape
                    tm = common.time_fn(fn, device=device, warmup=1, min_time=min_time)
                    tm.pop("samples")
                    peak = common.peak_memory(fn, device=device)
                    del out
                    if backend == "sdpa":
                        tm.update(_build_and_attend(scheme, q, k, v, extras, device, min_time))
                    records.append(dict(rec, status="ok", **tm, peak_memory_bytes=peak))
                except torch.OutOfMemoryError:
                    records.append(dict(rec, status="oom"))
                    torch.cuda.empty_cache()
                last = records[-1]
                log(
                    f"bias {scheme:5s} s={seq:6d} {backend:5s} {last['status']:4s} "
                    + (f"{last['median_s'] * 1e3:8.2f}ms" if last["status"] == "ok" else "")
                )
    return {
        "records": records,
        "device_memory_bytes": mem,
        "note": "median_s/min_s include building the bias (sdpa) or the score_mod tables "
        "(flex); build_s and attend_s (sdpa) time the two steps apart, as a model that "
        "builds the bias once per forward pays them; flex is compiled once per shape "
        "before timing",
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.device, quick=args.quick)
    print(f"{len(res['records'])} records")


if __name__ == "__main__":
    main()
