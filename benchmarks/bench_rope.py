"""Benchmark: applying RoPE to q and k, posenc_lib against its peers, on the same tensors.

For every case (shape, dtype, layout, pass) all implementations run in one process on the
same q and k, and the records carry the ratios to eager Hugging Face code and to a plain
same-size device copy (the bandwidth ceiling of a memory-bound op).

Bytes moved (the minimum any implementation must move): forward reads q and k and writes
the results, ``2 (N_q + N_k) itemsize``, plus the float32 cos/sin tables, ``2 s (r/2) 4``;
forward + backward moves twice that (the backward reads the incoming gradient and writes
the input gradient). Achieved bandwidth = bytes moved / median time.

Usage: ``python benchmarks/bench_rope.py [--device cuda] [--quick]`` (run_all.py runs all).
"""

from __future__ import annotations

import argparse
import functools
import math

import torch

try:
    from . import common
except ImportError:  # run as a script
    import common

import posenc_lib as pe
from posenc_lib.rope_triton import apply_rope_fast, triton_available

TUNE_CONFIGS = [(4, 8), (8, 4), (16, 4), (32, 2), (64, 1), (16, 1)]
SHAPES = {  # (batch, q_heads, kv_heads, head_dim, seq)
    "cuda": [(1, 32, 8, hd, s) for hd in (128, 64) for s in (512, 2048, 8192, 32768)],
    "cpu": [(1, 8, 2, 128, 1024), (1, 8, 2, 128, 4096)],  # 2 cores: a few minutes in all
    "quick": [(1, 4, 1, 64, 256)],
}


def rope_bytes(nq: int, nk: int, itemsize: int, seq: int, half: int, passes: str) -> int:
    """Minimum bytes moved: read + write q and k, read the float32 cos/sin tables."""
    one = 2 * (nq + nk) * itemsize + 2 * seq * half * 4
    return one * (2 if passes == "fwd+bwd" else 1)


def _hf_llama():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    return apply_rotary_pos_emb


def _hf_gptj():
    from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb

    return apply_rotary_pos_emb


def _pe_qk(q, k, cos, sin, layout):
    return pe.apply_rope(q, cos, sin, layout=layout), pe.apply_rope(k, cos, sin, layout=layout)


@functools.cache
def _compiled(name):
    if name == "posenc_lib":
        return torch.compile(_pe_qk, dynamic=True)
    if name == "hf_llama":
        return torch.compile(_hf_llama(), dynamic=True)
    return torch.compile(_hf_gptj(), dynamic=True)


def make_impls(device, layout, *, quick: bool, tune: bool = False) -> tuple[dict, dict]:
    """name -> builder(inputs) -> (callable returning outputs); and name -> skip reason."""
    impls, skipped = {}, {}
    cuda = torch.device(device).type == "cuda"
    fused = cuda and triton_available()

    impls["copy"] = lambda t: lambda: (t["q_out"].copy_(t["q"]), t["k_out"].copy_(t["k"]))
    impls["posenc_lib"] = lambda t: (
        lambda: (
            apply_rope_fast(t["q"], t["cos"], t["sin"], layout=layout),
            apply_rope_fast(t["k"], t["cos"], t["sin"], layout=layout),
        )
    )
    if fused and tune:  # kernel tile sweep (GPU): (positions per tile, heads per program)
        from posenc_lib.rope_triton import apply_rope_fused

        for bs, rows in TUNE_CONFIGS:
            cfg = {"BLOCK_S": bs, "ROWS_PER_PROGRAM": rows}
            impls[f"posenc_lib_fused_bs{bs}_r{rows}"] = lambda t, cfg=cfg: (
                lambda: (
                    apply_rope_fused(t["q"], t["cos"], t["sin"], layout=layout, _config=cfg),
                    apply_rope_fused(t["k"], t["cos"], t["sin"], layout=layout, _config=cfg),
                )
            )
    if fused:
        impls["posenc_lib_inplace"] = lambda t: (
            lambda: (
                apply_rope_fast(t["q_out"], t["cos"], t["sin"], layout=layout, inplace=True),
                apply_rope_fast(t["k_out"], t["cos"], t["sin"], layout=layout, inplace=True),
            )
        )
        impls["posenc_lib_eager"] = lambda t: (
            lambda: _pe_qk(t["q"], t["k"], t["cos"], t["sin"], layout)
        )
    if layout == "half":
        impls["hf_eager"] = lambda t: lambda: _hf_llama()(t["q"], t["k"], t["cos_hf"], t["sin_hf"])
    else:  # GPT-J's rotate_every_two, on its native (batch, seq, heads, dim) layout
        impls["hf_eager"] = lambda t: (
            lambda: (
                _hf_gptj()(t["q_bshd"], t["sin_gptj"], t["cos_gptj"]),
                _hf_gptj()(t["k_bshd"], t["sin_gptj"], t["cos_gptj"]),
            )
        )
    if quick:
        skipped["posenc_lib_compiled"] = skipped["hf_compiled"] = "--quick: no torch.compile"
    else:
        impls["posenc_lib_compiled"] = lambda t: (
            lambda: _compiled("posenc_lib")(t["q"], t["k"], t["cos"], t["sin"], layout)
        )
        if layout == "half":
            impls["hf_compiled"] = lambda t: (
                lambda: _compiled("hf_llama")(t["q"], t["k"], t["cos_hf"], t["sin_hf"])
            )
        else:
            impls["hf_compiled"] = lambda t: (
                lambda: (
                    _compiled("hf_gptj")(t["q_bshd"], t["sin_gptj"], t["cos_gptj"]),
                    _compiled("hf_gptj")(t["k_bshd"], t["sin_gptj"], t["cos_gptj"]),
                )
            )
    rot, why = common.optional_import("rotary_embedding_torch")
    if rot is None:
        skipped["rotary_embedding_torch"] = why
    elif layout == "interleaved":
        impls["rotary_embedding_torch"] = lambda t: (
            lambda: (
                rot.apply_rotary_emb(t["freqs_lucid"], t["q"]),
                rot.apply_rotary_emb(t["freqs_lucid"], t["k"]),
            )
        )
    else:
        skipped["rotary_embedding_torch"] = "implements the interleaved layout only"
    skipped["torchtune"] = (
        "not installable beside torch 2.13: torchtune 0.6.1 requires torchao and torchdata==0.11.0"
    )
    if layout == "half" and cuda:
        liger, why = common.optional_import("liger_kernel.transformers.rope")
        if liger is None:
            skipped["liger_kernel"] = why
        else:
            impls["liger_kernel"] = lambda t: (
                lambda: liger.liger_rotary_pos_emb(t["q"], t["k"], t["cos_hf"], t["sin_hf"])
            )
    elif not cuda:
        skipped["liger_kernel"] = "CUDA only"
    else:
        skipped["liger_kernel"] = "implements the half layout only"
    if not fused:
        skipped["posenc_lib_fused"] = (
            "no CUDA device: posenc_lib dispatches to the eager "
            "reference (apply_rope); the Triton kernel only runs in "
            "the interpreter on a CPU (tests, not speed)"
        )
    return impls, skipped


def make_inputs(batch, hq, hkv, head_dim, seq, dtype, device, *, grad: bool):
    gen = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(batch, hq, seq, head_dim, generator=gen, device=device, dtype=dtype)
    k = torch.randn(batch, hkv, seq, head_dim, generator=gen, device=device, dtype=dtype)
    inv_freq, scale = pe.rope_inv_freq(head_dim, base=10_000.0, scaling=None, seq_len=seq)
    cos, sin = pe.rope_cos_sin(
        torch.arange(seq, device=device), inv_freq.to(device), attention_scaling=scale
    )
    angles = torch.arange(seq, device=device, dtype=torch.float32)[:, None] * inv_freq.to(device)
    emb = torch.cat([angles, angles], dim=-1)
    t = {
        "q": q,
        "k": k,
        "cos": cos,
        "sin": sin,
        "q_out": torch.empty_like(q),
        "k_out": torch.empty_like(k),
        # Hugging Face: (batch, seq, head_dim) tables in the activation dtype
        "cos_hf": emb.cos()[None].to(dtype),
        "sin_hf": emb.sin()[None].to(dtype),
        "sin_gptj": angles.sin()[None].to(dtype),
        "cos_gptj": angles.cos()[None].to(dtype),
        "q_bshd": q.transpose(1, 2).contiguous(),
        "k_bshd": k.transpose(1, 2).contiguous(),
        # lucidrains: interleaved frequencies (seq, head_dim), float32
        "freqs_lucid": angles.repeat_interleave(2, dim=-1),
    }
    if grad:
        for name in ("q", "k", "q_bshd", "k_bshd"):
            t[name].requires_grad_(True)
    return t


def _with_backward(make_fn, t, name):
    """fn() running forward and backward; grads reset so nothing accumulates."""
    if name == "copy":  # forward copy + "backward" copy of the gradient

        def copy2():
            t["q_out"].copy_(t["q"].detach())
            t["k_out"].copy_(t["k"].detach())
            t["q_out"].copy_(t["gq"])
            t["k_out"].copy_(t["gk"])

        return copy2
    if name == "posenc_lib_inplace":
        return None
    fwd = make_fn(t)

    def step():
        for n in ("q", "k", "q_bshd", "k_bshd"):
            t[n].grad = None
        outs = fwd()
        # outputs are (q, k), possibly in (batch, seq, heads, dim) layout (GPT-J)
        grads = [
            g if g.shape == o.shape else g.transpose(1, 2)
            for g, o in zip((t["gq"], t["gk"]), outs, strict=True)
        ]
        torch.autograd.backward(list(outs), grads)

    return step


def run(
    device="cpu",
    *,
    quick=False,
    min_time=0.3,
    shapes=None,
    dtypes=None,
    layouts=None,
    passes=("fwd", "fwd+bwd"),
    tune=False,
    log=print,
) -> dict:
    device = torch.device(device)
    # one compiled function (dynamic shapes: one compile per dtype/layout/pass, not per
    # shape) serves many cases: let dynamo keep them all instead of silently falling back
    # to eager at the default limit of 8
    torch._dynamo.config.recompile_limit = 512
    torch._dynamo.config.accumulated_recompile_limit = 4096
    shapes = shapes or SHAPES["quick" if quick else device.type]
    dtypes = dtypes or ([torch.float32] if quick else [torch.float32, torch.bfloat16])
    layouts = layouts or ("half", "interleaved")
    records, skipped_all = [], {}
    for layout in layouts:
        impls, skipped = make_impls(device, layout, quick=quick, tune=tune)
        skipped_all[layout] = skipped
        for batch, hq, hkv, hd, seq in shapes:
            for dtype in dtypes:
                for p in passes:
                    grad = p == "fwd+bwd"
                    t = make_inputs(batch, hq, hkv, hd, seq, dtype, device, grad=grad)
                    if grad:
                        t["gq"], t["gk"] = torch.randn_like(t["q"]), torch.randn_like(t["k"])
                    case = {
                        "layout": layout,
                        "dtype": str(dtype).removeprefix("torch."),
                        "batch": batch,
                        "q_heads": hq,
                        "kv_heads": hkv,
                        "head_dim": hd,
                        "seq": seq,
                        "pass": p,
                    }
                    nbytes = rope_bytes(
                        t["q"].numel(), t["k"].numel(), t["q"].element_size(), seq, hd // 2, p
                    )
                    fns = {}
                    for name, make_fn in impls.items():
                        fn = _with_backward(make_fn, t, name) if grad else make_fn(t)
                        if fn is not None:
                            fns[name] = fn
                    with torch.no_grad() if not grad else torch.enable_grad():
                        times = common.time_many(fns, device=device, min_time=min_time)
                    for name, tm in times.items():
                        rec = dict(
                            case,
                            impl=name,
                            **tm,
                            bytes=nbytes,
                            bandwidth_Bps=nbytes / tm["min_s"],
                            frac_copy_bw=times["copy"]["min_s"] / tm["min_s"],
                            speedup_vs_hf_eager=times["hf_eager"]["min_s"] / tm["min_s"],
                        )
                        records.append(rec)
                    log(
                        f"rope {layout:11s} {case['dtype']:8s} hd={hd:3d} s={seq:6d} {p:7s} "
                        + " ".join(f"{n}={v['min_s'] * 1e3:.2f}ms" for n, v in times.items())
                    )
    return {
        "records": records,
        "skipped": skipped_all,
        "ratio_statistic": "min_s",
        "bytes_formula": "fwd: 2*(numel(q)+numel(k))*itemsize + 2*seq*(head_dim/2)*4; "
        "fwd+bwd: twice that",
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.device, quick=args.quick, min_time=0.05 if args.quick else 0.3)
    print(
        f"{len(res['records'])} records; geometric-mean speed-up of posenc_lib vs HF eager: "
        f"{math.exp(sum(math.log(r['speedup_vs_hf_eager']) for r in res['records'] if r['impl'] == 'posenc_lib') / max(1, sum(r['impl'] == 'posenc_lib' for r in res['records']))):.2f}"
    )


if __name__ == "__main__":
    main()
