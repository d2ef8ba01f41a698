"""Library-wide properties: every scheme stays finite at position 10**6, every public name
is documented, and importing the library has no heavy side effects."""

import importlib
import inspect
import subprocess
import sys

import pytest
import torch

import posenc_lib as pe

FAR = 10**6
MODULES = [
    "alibi",
    "attention",
    "flex_bias",
    "learned",
    "model",
    "multidim",
    "relative",
    "rope",
    "rope_convert",
    "rope_module",
    "rope_scaling",
    "rope_triton",
    "sinusoidal",
    "t5",
    "utils",
    "book.plotting",
    "book.exercises.absolute",
    "book.exercises.relative",
    "book.exercises.rope",
]
SCALINGS = [
    None,
    {"rope_type": "linear", "factor": 4.0},
    {"rope_type": "ntk", "factor": 4.0},
    {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 64},
    {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
    {
        "rope_type": "llama3",
        "factor": 8.0,
        "original_max_position_embeddings": 64,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
    },
]


def _finite(t: torch.Tensor, what: str) -> None:
    assert torch.isfinite(t).all(), f"{what}: non-finite values at position 10**6"


# ------------------------------------------------------------- finite at position 10**6


def test_sinusoidal_far(device, dtype):
    table = pe.sinusoidal_encoding(torch.tensor([0.0, FAR], device=device), 64, dtype=dtype)
    assert table.dtype == dtype and table.device.type == device.type
    _finite(table, "sinusoidal_encoding")
    # a point on the unit circle per pair, even that far out (float32 angles, then cast)
    pairs = table.float().reshape(2, 32, 2)
    torch.testing.assert_close(
        pairs.norm(dim=-1), torch.ones(2, 32, device=device), atol=1e-2, rtol=0
    )
    enc = pe.SinusoidalPositionalEncoding(16, max_len=8).to(device)
    out = enc(torch.zeros(1, 3, 16, device=device, dtype=dtype), offset=FAR)
    assert out.dtype == dtype
    _finite(out, "SinusoidalPositionalEncoding")
    _finite(pe.sinusoidal_shift_matrix(FAR, 16, device=device), "sinusoidal_shift_matrix")


def test_learned_has_no_vector_far_away():
    """Learned tables: n/a at 10**6 by design, and asking for it is an error, not a wrap."""
    emb = pe.LearnedPositionalEmbedding(16, 8)
    with pytest.raises(ValueError, match="max_len"):
        emb(torch.zeros(1, 1, 8), offset=FAR)


@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda s: "none" if s is None else s["rope_type"])
def test_rope_far(scaling, device, dtype):
    inv, att = pe.rope_inv_freq(32, scaling=scaling, seq_len=FAR + 1, device=device)
    cos, sin = pe.rope_cos_sin(torch.tensor([0.0, FAR], device=device), inv, attention_scaling=att)
    _finite(cos, "rope cos")
    _finite(sin, "rope sin")
    x = torch.randn(1, 2, 2, 32, device=device).to(dtype)
    for layout in pe.ROPE_LAYOUTS:
        y = pe.apply_rope(x, cos, sin, layout=layout)
        assert y.dtype == dtype
        _finite(y, f"apply_rope({layout})")
    rot = pe.RotaryEmbedding(32, scaling=scaling).to(device)
    q, k = rot(x, x, positions=torch.tensor([FAR - 1.0, float(FAR)], device=device))
    _finite(q, "RotaryEmbedding q")
    _finite(k, "RotaryEmbedding k")
    # the rotation preserves norms, also at 10**6 (float32 arithmetic inside)
    if dtype == torch.float32 and scaling is None:
        torch.testing.assert_close(q.norm(dim=-1), x.norm(dim=-1), atol=0, rtol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_alibi_far(causal, device, dtype):
    bias = pe.alibi_bias(8, 2, FAR + 1, offset=FAR - 1, causal=causal, device=device, dtype=dtype)
    assert bias.shape == (8, 2, FAR + 1) and bias.dtype == dtype
    visible = pe.relative_positions(2, FAR + 1, offset=FAR - 1, device=device) <= 0
    if not causal:
        visible = torch.ones_like(visible)
    _finite(bias[:, visible], "alibi_bias (visible keys)")
    # only the one future key of the first query is masked
    assert torch.isneginf(bias).sum().item() == (8 if causal else 0)


def test_alibi_far_inside_attention(device):
    attn = pe.MultiHeadAttention(16, 2, position="alibi").to(device=device, dtype=torch.float16)
    cache = pe.LayerKVCache(torch.zeros(1, 2, FAR // 8, 8, device=device, dtype=torch.float16))
    cache.values = cache.keys.clone()
    out = attn(torch.randn(1, 1, 16, device=device, dtype=torch.float16), kv_cache=cache)
    _finite(out, "MultiHeadAttention(alibi, float16) after 125 000 cached tokens")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_t5_far(bidirectional, device):
    rel = torch.tensor([-FAR, -1, 0, 1, FAR], device=device)
    buckets = pe.t5_relative_position_bucket(rel, bidirectional=bidirectional)
    assert buckets.min() >= 0 and buckets.max() < 32
    bias = pe.T5RelativePositionBias(4, bidirectional=bidirectional).to(device)
    out = bias(2, 3, offset=FAR)
    assert out.shape == (4, 2, 3)
    _finite(out, "T5RelativePositionBias")
    # far past keys all share the last bucket of the past side
    far = bias.buckets(1, 2, offset=FAR)
    assert far[0, 0] == far[0, 1]


def test_shaw_far(device, dtype):
    shaw = pe.ShawRelativePosition(8, max_distance=4).to(device=device, dtype=dtype)
    idx = shaw.indices(2, 3, offset=FAR)
    assert torch.equal(idx, torch.zeros_like(idx)), "distance 10**6 uses the clipped edge row"
    q = torch.randn(1, 2, 2, 8, device=device, dtype=dtype)
    _finite(shaw.key_bias(q, 2, 3, offset=FAR), "Shaw key_bias")
    alpha = torch.full((1, 2, 2, 3), 1 / 3, device=device, dtype=dtype)
    _finite(shaw.value_term(alpha, 2, 3, offset=FAR), "Shaw value_term")


def test_transformer_xl_far(device):
    xl = pe.TransformerXLRelativeBias(16, 2, 8).to(device)
    q, k = torch.randn(1, 2, 2, 8, device=device), torch.randn(1, 2, 3, 8, device=device)
    _finite(xl(q, k, offset=FAR), "TransformerXLRelativeBias")


def test_multidim_far(device, dtype):
    pos = torch.tensor([[0.0, 0.0], [FAR, FAR]], device=device)
    cos, sin = pe.rope_cos_sin_2d(pos, 16, dtype=dtype)
    assert cos.dtype == dtype
    _finite(cos, "rope_cos_sin_2d cos")
    _finite(sin, "rope_cos_sin_2d sin")
    ids = torch.tensor([[0, FAR], [0, FAR], [0, FAR]], device=device)
    inv, _ = pe.rope_inv_freq(16, device=device)
    cos, sin = pe.mrope_cos_sin(ids, inv, (2, 3, 3), dtype=dtype)
    _finite(cos, "mrope_cos_sin cos")
    _finite(sin, "mrope_cos_sin sin")


# ---------------------------------------------------------------------- documentation


def _public(module_name: str):
    module = importlib.import_module(f"posenc_lib.{module_name}")
    assert hasattr(module, "__all__"), f"posenc_lib.{module_name} has no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"posenc_lib.{module_name}.__all__ lists missing {name}"
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module_name}.{name}", obj


PUBLIC = [item for m in MODULES for item in _public(m)]


def test_every_module_is_documented_and_exported():
    for m in MODULES:
        module = importlib.import_module(f"posenc_lib.{m}")
        assert (module.__doc__ or "").strip(), f"posenc_lib.{m} has no module docstring"
    # every name of every family module is reachable as pe.NAME
    for m in MODULES:
        if "." in m:  # the book's support code is not re-exported
            continue
        for name in importlib.import_module(f"posenc_lib.{m}").__all__:
            assert hasattr(pe, name), f"pe.{name} (from {m}) is not exported"


@pytest.mark.parametrize(("qualname", "obj"), PUBLIC, ids=[q for q, _ in PUBLIC])
def test_public_callable_has_a_real_docstring(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    lines = [line for line in doc.splitlines() if line.strip()]
    assert len(lines) >= 2, f"{qualname}: docstring needs at least two lines, got {doc!r}"
    # a formula or a shape: code markup, a paper, an equation or a tuple shape
    assert any(mark in doc for mark in ("``", "=", "(", ":func:", ":class:")), (
        f"{qualname}: docstring shows neither a formula nor a shape"
    )


# the checkers, helpers and plotting return no tensors: no shapes to document
TENSOR_FUNCTIONS = [
    (q, obj)
    for q, obj in PUBLIC
    if inspect.isfunction(obj) and not q.startswith(("book.", "utils."))
]


@pytest.mark.parametrize(
    ("qualname", "obj"), TENSOR_FUNCTIONS, ids=[q for q, _ in TENSOR_FUNCTIONS]
)
def test_public_function_documents_shapes_or_formula(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    shape_or_formula = any(
        mark in doc
        for mark in ("shape", "Returns", "(heads", "(seq", "(batch", "(n", "(num_heads", "= ")
    )
    assert shape_or_formula, f"{qualname}: docstring gives no shapes and no formula"


# ------------------------------------------------------------------ import side effects


def test_import_has_no_heavy_side_effects():
    code = (
        "import sys, posenc_lib; "
        "heavy = [m for m in ('triton', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
