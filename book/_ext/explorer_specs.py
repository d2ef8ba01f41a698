"""Vega-Lite specifications of the book's offline explorers (see ``explorer.py``).

Every encoding in the book is closed-form, so the browser computes it: each spec
generates its data with a ``sequence`` and Vega expressions, and its sliders are
Vega-Lite parameters bound to ``<input type="range">``. The formulas are those of
``posenc_lib`` (the docstrings below name the function); ``reference_values`` computes
the same numbers with the library at the sliders' starting values, and the browser test
compares them with what the chart draws.

Each spec is a plain dict (JSON); the explorer directive inlines it in the page.
"""

from __future__ import annotations

from posenc_lib.book.plotting import SCHEME_STYLE

# Series told apart by a sequential colour scale (RoPE pairs, ALiBi heads): viridis from
# its dark end to 0.55 only, where every colour keeps a contrast of at least 3:1 with the
# white chart (3.4 at 0.55; WCAG non-text contrast; viridis's yellow end has 1.3). On the
# dark chart (#333) book/_static/explorers.js takes viridis from 0.5 to its bright end.
# Points are drawn opaque ("opacity": 1): at Vega-Lite's default of 0.7 for points they
# blend into the background (viridis 0.55 would show at 2.3:1).
SERIES_SCHEME = {"name": "viridis", "extent": [0, 0.55]}

# The book's colour of each scheme (Okabe-Ito), plus a dash pattern so that the lines
# differ without colour too.
_SCHEMES = {
    "rope_pi": ("PI", SCHEME_STYLE["rope_pi"]["color"], [6, 3]),
    "ntk": ("NTK-aware", SCHEME_STYLE["ntk"]["color"], [2, 2]),
    "yarn": ("YaRN", SCHEME_STYLE["yarn"]["color"], [8, 2, 2, 2]),
    "llama3": ("Llama 3", SCHEME_STYLE["llama3"]["color"], [1, 0]),
}

_CONFIG = {
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal"},
    "legend": {"labelFontSize": 11, "titleFontSize": 12},
    "title": {"fontSize": 13, "anchor": "start"},
}
# Small enough for a phone (390 px screen) with axis titles; the box scrolls if not.
_W, _H = 280, 180


def _slider(name, label, value, lo, hi, step):
    return {
        "name": name,
        "value": value,
        "bind": {"input": "range", "min": lo, "max": hi, "step": step, "name": label + " "},
    }


def _spec(description, params, views, *, direction="vconcat"):
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "description": description,
        "params": params,
        direction: views,
        "config": _CONFIG,
    }


def sinusoid() -> dict:
    """Sinusoidal table and ``PE(p) . PE(p + k)`` (posenc_lib.sinusoidal).

    ``PE[p, 2i] = sin(p w_i)``, ``PE[p, 2i + 1] = cos(p w_i)``, ``w_i = b^(-2i/d)``;
    the dot product is ``sum_i cos(k w_i)`` for every ``p``.
    """
    freq = "pow(pow(10, log_base), -2 * floor(datum.dim / 2) / d_model)"
    table = {
        "title": "Sinusoidal table PE[p, j]",
        "width": _W,
        "height": _H,
        "data": {"sequence": {"start": 0, "stop": 64 * 256, "as": "idx"}},
        "transform": [
            {"calculate": "floor(datum.idx / 256)", "as": "p"},
            {"calculate": "datum.idx % 256", "as": "dim"},
            {"filter": "datum.dim < d_model"},
            {
                "calculate": f"datum.dim % 2 == 0 ? sin(datum.p * {freq}) : cos(datum.p * {freq})",
                "as": "value",
            },
            {"calculate": "datum.p + 1", "as": "p1"},
            {"calculate": "datum.dim + 1", "as": "dim1"},
        ],
        "mark": {"type": "rect"},
        "encoding": {
            "x": {"field": "dim", "type": "quantitative", "title": "feature j"},
            "x2": {"field": "dim1"},
            "y": {
                "field": "p",
                "type": "quantitative",
                "title": "position p",
                "scale": {"reverse": True},
            },
            "y2": {"field": "p1"},
            "color": {
                "field": "value",
                "type": "quantitative",
                "title": "PE",
                "scale": {"scheme": "cividis", "domain": [-1, 1]},
            },
        },
    }
    dot = {
        "title": "Dot product PE(p) · PE(p + k)",
        "width": _W,
        "height": _H,
        "data": {"sequence": {"start": 0, "stop": 129 * 128, "as": "idx"}},
        "transform": [
            {"calculate": "floor(datum.idx / 128)", "as": "k"},
            {"calculate": "datum.idx % 128", "as": "i"},
            {"filter": "datum.i < d_model / 2"},
            {
                "calculate": "cos(datum.k * pow(pow(10, log_base), -2 * datum.i / d_model))",
                "as": "term",
            },
            {"aggregate": [{"op": "sum", "field": "term", "as": "dot"}], "groupby": ["k"]},
        ],
        "mark": {"type": "line", "color": "#0072B2"},
        "encoding": {
            "x": {"field": "k", "type": "quantitative", "title": "offset k (positions)"},
            "y": {"field": "dot", "type": "quantitative", "title": "dot product"},
        },
    }
    return _spec(
        "Sinusoidal position table (64 positions by d_model features) as a heatmap, and "
        "the dot product of two position vectors k positions apart, for the chosen base "
        "and d_model.",
        [
            _slider("log_base", "log10(base)", 4, 1, 6, 0.1),
            _slider("d_model", "d_model", 64, 8, 256, 8),
        ],
        [table, dot],
    )


def rope() -> dict:
    """RoPE pair angles at position m and the score against offset (posenc_lib.rope).

    ``theta_i = b^(-2i/d)``; pair ``i`` of a vector at position ``m`` is turned by
    ``m theta_i``. With ``q = k = (1, ..., 1)`` the score ``q . R(delta) k`` is
    ``2 sum_i cos(delta theta_i)``; the chart shows it divided by ``d`` (1 at delta 0).
    """
    theta = "pow(pow(10, log_base), -2 * datum.i / d_head)"
    angles = {
        "title": "Pair i turned by m·θᵢ (unit circle)",
        "width": _H + 20,
        "height": _H + 20,
        "data": {"sequence": {"start": 0, "stop": 128, "as": "i"}},
        "transform": [
            {"filter": "datum.i < d_head / 2"},
            {"calculate": f"position * {theta}", "as": "angle"},
            {"calculate": "cos(datum.angle)", "as": "x"},
            {"calculate": "sin(datum.angle)", "as": "y"},
        ],
        "mark": {"type": "point", "filled": True, "size": 40, "opacity": 1},
        "encoding": {
            "x": {
                "field": "x",
                "type": "quantitative",
                "title": "cos(m θᵢ)",
                "scale": {"domain": [-1.1, 1.1]},
            },
            "y": {
                "field": "y",
                "type": "quantitative",
                "title": "sin(m θᵢ)",
                "scale": {"domain": [-1.1, 1.1]},
            },
            "color": {
                "field": "i",
                "type": "quantitative",
                "title": "pair i",
                "scale": {"scheme": SERIES_SCHEME},
            },
            "tooltip": [{"field": "i"}, {"field": "angle", "format": ".3f"}],
        },
    }
    score = {
        "title": "Score q·R(Δ)k / d for q = k = (1, …, 1)",
        "width": _W,
        "height": _H,
        "data": {"sequence": {"start": 0, "stop": 257 * 64, "as": "idx"}},
        "transform": [
            {"calculate": "floor(datum.idx / 64)", "as": "offset"},
            {"calculate": "datum.idx % 64", "as": "i"},
            {"filter": "datum.i < d_head / 2"},
            {"calculate": f"2 * cos(datum.offset * {theta}) / d_head", "as": "term"},
            {"aggregate": [{"op": "sum", "field": "term", "as": "score"}], "groupby": ["offset"]},
        ],
        "mark": {"type": "line", "color": "#E69F00"},
        "encoding": {
            "x": {"field": "offset", "type": "quantitative", "title": "offset Δ (positions)"},
            "y": {
                "field": "score",
                "type": "quantitative",
                "title": "score / d",
                "scale": {"domain": [-1, 1]},
            },
        },
    }
    return _spec(
        "RoPE: the rotation of every two-dimensional pair at position m, drawn on the "
        "unit circle, and the attention score of two all-ones vectors against their "
        "offset, for the chosen base and head size.",
        [
            _slider("log_base", "log10(base)", 4, 1, 6, 0.1),
            _slider("d_head", "d_head", 64, 4, 128, 4),
            _slider("position", "position m", 10, 0, 256, 1),
        ],
        [angles, score],
    )


def alibi_slopes_table(max_heads: int = 32) -> list[dict]:
    """Slopes of posenc_lib.alibi.alibi_slopes for 1..max_heads heads (inline data)."""
    import torch

    from posenc_lib.alibi import alibi_slopes  # the book's own rule, powers of two or not

    rows = []
    for n in range(1, max_heads + 1):
        for h, s in enumerate(alibi_slopes(n, dtype=torch.float64).tolist(), start=1):
            rows.append({"key": f"{n}_{h}", "slope": float(f"{s:.6g}")})
    return rows


def alibi() -> dict:
    """ALiBi per-head bias ``-m_h (i - j)`` against distance (posenc_lib.alibi)."""
    lookup = {
        "lookup": "key",
        "from": {"data": {"values": alibi_slopes_table()}, "key": "key", "fields": ["slope"]},
    }
    bias = {
        "title": "Bias added to the score, per head",
        "width": _W,
        "height": _H,
        "data": {"sequence": {"start": 0, "stop": 32 * 65, "as": "idx"}},
        "transform": [
            {"calculate": "floor(datum.idx / 65) + 1", "as": "head"},
            {"calculate": "datum.idx % 65", "as": "distance"},
            {"filter": "datum.head <= heads"},
            {"calculate": "heads + '_' + datum.head", "as": "key"},
            lookup,
            {"calculate": "-datum.slope * datum.distance", "as": "bias"},
        ],
        "mark": {"type": "line"},
        "encoding": {
            "x": {
                "field": "distance",
                "type": "quantitative",
                "title": "distance i − j (positions)",
            },
            "y": {"field": "bias", "type": "quantitative", "title": "bias"},
            "color": {
                "field": "head",
                "type": "quantitative",
                "title": "head h",
                "scale": {"scheme": SERIES_SCHEME},
            },
            "detail": {"field": "head", "type": "nominal"},
        },
    }
    slopes = {
        "title": "Slope mₕ of each head",
        "width": _W,
        "height": _H,
        "data": {"sequence": {"start": 1, "stop": 33, "as": "head"}},
        "transform": [
            {"filter": "datum.head <= heads"},
            {"calculate": "heads + '_' + datum.head", "as": "key"},
            lookup,
        ],
        "mark": {"type": "point", "filled": True, "color": "#D55E00", "size": 50, "opacity": 1},
        "encoding": {
            "x": {
                "field": "head",
                "type": "quantitative",
                "title": "head h",
                "scale": {"domain": [0, 33]},
            },
            "y": {
                "field": "slope",
                "type": "quantitative",
                "title": "slope mₕ (log scale)",
                "scale": {"type": "log", "domain": [0.00390625, 1]},
            },
            "tooltip": [{"field": "head"}, {"field": "slope", "format": ".5f"}],
        },
    }
    return _spec(
        "ALiBi: the linear bias that each head adds to the attention score against the "
        "distance between query and key, and the slope of each head, for the chosen "
        "number of heads.",
        [_slider("heads", "heads", 8, 1, 32, 1)],
        [bias, slopes],
    )


def _ratio_expr(method: str) -> str:
    """theta_i' / theta_i of posenc_lib.rope_scaling for ``method`` (Vega expression)."""
    if method == "rope_pi":  # _linear
        return "1 / factor"
    if method == "ntk":  # _ntk: b' = b s^(d/(d-2))
        return "pow(factor, -2 * datum.i / (d_head - 2))"
    if method == "yarn":  # _yarn with beta_fast 32, beta_slow 1, truncate
        return "(1 - datum.gamma) + datum.gamma / factor"
    if method == "llama3":  # _llama3 with low_freq_factor 1, high_freq_factor 4
        return (
            "datum.wavelen < orig_len / 4 ? 1 : datum.wavelen > orig_len ? 1 / factor"
            " : (1 - datum.a) / factor + datum.a"
        )
    raise ValueError(f"method must be one of {sorted(_SCHEMES)}, got {method!r}")


def scaling() -> dict:
    """PI, NTK-aware, YaRN and Llama 3 per-pair frequency scaling (posenc_lib.rope_scaling)."""
    yarn_index = "d_head * log(orig_len / (2 * PI * {r})) / (2 * log(pow(10, log_base)))"
    transform = [
        {"filter": "datum.i < d_head / 2"},
        {"calculate": "pow(pow(10, log_base), -2 * datum.i / d_head)", "as": "theta"},
        {"calculate": "2 * PI / datum.theta", "as": "wavelen"},
        {"calculate": "max(floor(" + yarn_index.format(r=32) + "), 0)", "as": "lo"},
        {"calculate": "min(ceil(" + yarn_index.format(r=1) + "), d_head - 1)", "as": "hi0"},
        {"calculate": "datum.hi0 == datum.lo ? datum.hi0 + 0.001 : datum.hi0", "as": "hi"},
        {"calculate": "clamp((datum.i - datum.lo) / (datum.hi - datum.lo), 0, 1)", "as": "gamma"},
        {"calculate": "(orig_len / datum.wavelen - 1) / (4 - 1)", "as": "a"},
    ]
    for method in _SCHEMES:
        transform.append({"calculate": _ratio_expr(method), "as": method})
    transform += [
        {"fold": list(_SCHEMES), "as": ["key", "ratio"]},
        {
            "calculate": "{'rope_pi': 'PI', 'ntk': 'NTK-aware', 'yarn': 'YaRN',"
            " 'llama3': 'Llama 3'}[datum.key]",
            "as": "method",
        },
        {"calculate": "2 * PI / (datum.theta * datum.ratio)", "as": "new_wavelen"},
    ]
    labels = [v[0] for v in _SCHEMES.values()]
    colour = {
        "field": "method",
        "type": "nominal",
        "title": "method",
        "scale": {"domain": labels, "range": [v[1] for v in _SCHEMES.values()]},
    }
    dash = {
        "field": "method",
        "type": "nominal",
        "title": "method",
        "scale": {"domain": labels, "range": [v[2] for v in _SCHEMES.values()]},
    }
    ratio = {
        "title": "Frequency ratio θ′ᵢ / θᵢ per pair",
        "width": _W,
        "height": _H,
        "mark": {"type": "line", "point": True, "strokeWidth": 2},
        "encoding": {
            "x": {"field": "i", "type": "quantitative", "title": "pair i"},
            "y": {
                "field": "ratio",
                "type": "quantitative",
                "title": "θ′ / θ (log scale)",
                "scale": {"type": "log"},
            },
            "color": colour,
            "strokeDash": dash,
            "tooltip": [{"field": "method"}, {"field": "i"}, {"field": "ratio", "format": ".4f"}],
        },
    }
    wavelength = {
        "title": "Wavelength after scaling vs the lengths",
        "width": _W,
        "height": _H,
        "layer": [
            {
                "mark": {"type": "line", "strokeWidth": 2},
                "encoding": {
                    "x": {"field": "i", "type": "quantitative", "title": "pair i"},
                    "y": {
                        "field": "new_wavelen",
                        "type": "quantitative",
                        "title": "wavelength 2π/θ′ᵢ (positions, log)",
                        "scale": {"type": "log"},
                    },
                    "color": colour,
                    "strokeDash": dash,
                },
            },
            {
                "data": {"values": [{}]},
                "transform": [{"calculate": "orig_len", "as": "y"}],
                "mark": {"type": "rule", "color": "#555555"},
                "encoding": {"y": {"field": "y", "type": "quantitative"}},
            },
            {
                "data": {"values": [{}]},
                "transform": [{"calculate": "orig_len * factor", "as": "y"}],
                "mark": {"type": "rule", "color": "#000000", "strokeDash": [4, 4]},
                "encoding": {"y": {"field": "y", "type": "quantitative"}},
            },
        ],
    }
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "description": (
            "Context extension: how PI, NTK-aware scaling, YaRN and Llama 3 change the "
            "frequency of each RoPE pair, and the resulting wavelengths against the "
            "original length (solid rule) and the extended length (dashed rule), for the "
            "chosen factor, original length, head size and base."
        ),
        "params": [
            _slider("factor", "factor s", 8, 1, 32, 1),
            _slider("orig_len", "original length L₀", 4096, 256, 16384, 256),
            _slider("d_head", "d_head", 64, 8, 128, 8),
            _slider("log_base", "log10(base)", 4, 3, 6, 0.1),
        ],
        "data": {"sequence": {"start": 0, "stop": 64, "as": "i"}},
        "transform": transform,
        "vconcat": [ratio, wavelength],
        "config": _CONFIG,
    }


EXPLORERS = {"sinusoid": sinusoid, "rope": rope, "alibi": alibi, "scaling": scaling}


def reference_values(name: str) -> dict:
    """Numbers the chart must show at the sliders' starting values, from posenc_lib.

    The browser test reads the named dataset of the rendered view and compares.
    """
    import torch

    if name == "sinusoid":  # dot product at k = 0..4, base 1e4, d_model 64
        from posenc_lib.sinusoidal import sinusoidal_encoding

        pe = sinusoidal_encoding(8, 64, base=1e4, dtype=torch.float64)
        return {"field": "dot", "key": "k", "values": {k: float(pe[0] @ pe[k]) for k in range(5)}}
    if name == "rope":  # score / d at offsets 0..4, base 1e4, d_head 64
        from posenc_lib.rope_scaling import base_inv_freq

        theta = base_inv_freq(64, 1e4)
        return {
            "field": "score",
            "key": "offset",
            "values": {o: float(2 * torch.cos(o * theta).sum() / 64) for o in range(5)},
        }
    if name == "alibi":  # slopes of 8 heads
        from posenc_lib.alibi import alibi_slopes

        s = alibi_slopes(8, dtype=torch.float64).tolist()
        return {"field": "slope", "key": "head", "values": {h + 1: s[h] for h in range(8)}}
    if name == "scaling":  # YaRN and Llama 3 ratios per pair, factor 8, L0 4096, d 64, b 1e4
        from posenc_lib.rope_scaling import ROPE_INIT_FUNCTIONS, base_inv_freq

        theta = base_inv_freq(64, 1e4)
        out = {}
        for key, rope_type, params in [
            ("rope_pi", "linear", {"factor": 8.0}),
            ("ntk", "ntk", {"factor": 8.0}),
            (
                "yarn",
                "yarn",
                {
                    "factor": 8.0,
                    "original_max_position_embeddings": 4096,
                    "beta_fast": 32.0,
                    "beta_slow": 1.0,
                },
            ),
            (
                "llama3",
                "llama3",
                {
                    "factor": 8.0,
                    "original_max_position_embeddings": 4096,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                },
            ),
        ]:
            inv, _ = ROPE_INIT_FUNCTIONS[rope_type](64, 1e4, params, None)
            out[key] = (inv / theta).tolist()
        return {"field": "ratio", "key": "i", "series": "key", "values": out}
    raise ValueError(f"name must be one of {sorted(EXPLORERS)}, got {name!r}")
