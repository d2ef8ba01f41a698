"""Benchmark: building position tables, posenc_lib against a naive loop and the peers.

Tables: the sinusoidal encoding, and RoPE cos/sin for each frequency scaling (none,
linear, dynamic NTK, YaRN, Llama 3), built by ``pe.rope_inv_freq`` + ``pe.rope_cos_sin``;
Hugging Face's ``LlamaRotaryEmbedding`` (its ``rope_parameters`` config path, init + forward);
lucidrains' ``RotaryEmbedding`` (frequencies, then cos/sin); and a pure-Python double loop
(run at a reduced length and scaled linearly: it is O(seq x dim) scalar operations).
"""

from __future__ import annotations

import argparse
import math

import torch

try:
    from . import common
except ImportError:  # run as a script
    import common

import posenc_lib as pe

# posenc_lib scaling argument and the equivalent Hugging Face rope_parameters
SCALINGS = {
    "none": (None, {"rope_type": "default"}),
    "linear": ({"type": "linear", "factor": 4.0}, {"rope_type": "linear", "factor": 4.0}),
    "dynamic": (
        {"type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 2048},
        {"rope_type": "dynamic", "factor": 4.0},
    ),
    "yarn": (
        {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
    ),
    "llama3": (
        {
            "type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 2048,
        },
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 2048,
        },
    ),
}
NAIVE_MAX_SEQ = 512


def naive_rope_tables(seq: int, head_dim: int, base: float = 10_000.0):
    """cos/sin (seq, head_dim/2) one scalar at a time (the reference for 'naive')."""
    cos = [[0.0] * (head_dim // 2) for _ in range(seq)]
    sin = [[0.0] * (head_dim // 2) for _ in range(seq)]
    for p in range(seq):
        for i in range(head_dim // 2):
            angle = p * base ** (-2 * i / head_dim)
            cos[p][i] = math.cos(angle)
            sin[p][i] = math.sin(angle)
    return torch.tensor(cos), torch.tensor(sin)


def naive_sinusoidal(seq: int, d_model: int, base: float = 10_000.0):
    table = [[0.0] * d_model for _ in range(seq)]
    for p in range(seq):
        for i in range(d_model // 2):
            angle = p / base ** (2 * i / d_model)
            table[p][2 * i] = math.sin(angle)
            table[p][2 * i + 1] = math.cos(angle)
    return torch.tensor(table)


def _pe_rope(seq, head_dim, scaling, device):
    inv_freq, att = pe.rope_inv_freq(head_dim, base=10_000.0, scaling=scaling, seq_len=seq)
    return pe.rope_cos_sin(
        torch.arange(seq, device=device), inv_freq.to(device), attention_scaling=att
    )


def _hf_rope(seq, head_dim, rope_params, device):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    cfg = LlamaConfig(
        hidden_size=head_dim * 8,
        num_attention_heads=8,
        max_position_embeddings=8192,  # = 4 x 2048, the YaRN factor
        rope_parameters=dict(rope_params, rope_theta=10_000.0),
    )
    emb = LlamaRotaryEmbedding(cfg).to(device)
    x = torch.empty(1, 1, head_dim, device=device)
    return emb(x, torch.arange(seq, device=device)[None])


def _lucid_rope(seq, head_dim, device):
    from rotary_embedding_torch import RotaryEmbedding

    freqs = RotaryEmbedding(head_dim, cache_if_possible=False).to(device)(
        torch.arange(seq, device=device)
    )
    return freqs.cos(), freqs.sin()


def _sinusoidal(seq, d_model, device):
    return pe.sinusoidal_encoding(seq, d_model, device=device)


def run(device="cpu", *, quick=False, min_time=0.2, log=print) -> dict:
    device = torch.device(device)
    seqs = (
        [256]
        if quick
        else ([1024, 8192, 131_072] if device.type == "cuda" else [1024, 8192, 32_768])
    )
    head_dim = 128
    records, skipped = [], {}
    for seq in seqs:
        fns = {}
        naive_seq = min(seq, NAIVE_MAX_SEQ)
        fns[("rope", "none", "naive_loop")] = lambda ns=naive_seq: naive_rope_tables(ns, head_dim)
        fns[("sinusoidal", "none", "naive_loop")] = lambda ns=naive_seq: naive_sinusoidal(
            ns, head_dim
        )
        fns[("sinusoidal", "none", "posenc_lib")] = lambda s=seq: _sinusoidal(s, head_dim, device)
        for name, (pe_scaling, hf_params) in SCALINGS.items():
            if quick and name not in ("none", "yarn"):
                continue
            fns[("rope", name, "posenc_lib")] = lambda s=seq, sc=pe_scaling: _pe_rope(
                s, head_dim, sc, device
            )
            fns[("rope", name, "hf_transformers")] = lambda s=seq, hp=hf_params: _hf_rope(
                s, head_dim, hp, device
            )
        fns[("rope", "none", "rotary_embedding_torch")] = lambda s=seq: _lucid_rope(
            s, head_dim, device
        )
        ok = {}
        for key, fn in fns.items():
            try:
                fn()
                ok[key] = fn
            except Exception as exc:  # noqa: BLE001 - record, do not abort the run
                skipped["/".join(key)] = f"{type(exc).__name__}: {exc}"
        times = common.time_many(ok, device=device, min_time=min_time)
        for (table, scaling, impl), tm in times.items():
            scale = seq / naive_seq if impl == "naive_loop" else 1.0
            rec = {
                "table": table,
                "scaling": scaling,
                "impl": impl,
                "seq": seq,
                "head_dim": head_dim,
                "measured_seq": naive_seq if impl == "naive_loop" else seq,
                "min_s": tm["min_s"] * scale,
                "median_s": tm["median_s"] * scale,
                "reps": tm["reps"],
                "extrapolated": scale != 1.0,
            }
            records.append(rec)
        log(
            f"tables s={seq}: "
            + " ".join(f"{'/'.join(k)}={v['min_s'] * 1e3:.2f}ms" for k, v in times.items())
        )
    return {
        "records": records,
        "skipped": skipped,
        "ratio_statistic": "min_s",
        "naive_note": f"naive loops run at min(seq, {NAIVE_MAX_SEQ}) positions; times "
        "scaled linearly to seq (flag 'extrapolated')",
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.device, quick=args.quick)
    print(f"{len(res['records'])} records, skipped: {res['skipped']}")


if __name__ == "__main__":
    main()
