"""The figure style of every chapter: sharp on HiDPI screens, legible on a phone.

Call :func:`use_book_style` once at the top of a chapter; importing this module changes
nothing. Categories (one line per scheme) take their colour, marker and line style from
:data:`SCHEME_STYLE`, so a scheme looks the same in every chapter and stays apart from
its neighbours without colour vision: the Okabe-Ito palette plus a distinct marker.
"""

from __future__ import annotations

__all__ = [
    "use_book_style",
    "scheme_style",
    "SCHEME_STYLE",
    "OKABE_ITO",
    "SEQUENTIAL_CMAP",
    "DIVERGING_CMAP",
]

#: Colour-blind-safe, perceptually uniform colormaps used for every heatmap in the book.
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "cividis"

#: Okabe & Ito (2008), distinguishable under the common colour-vision deficiencies.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}

_C = OKABE_ITO
#: One look per scheme, shared by every chapter, as in
#: ``ax.plot(x, y, **SCHEME_STYLE["rope"])``.
#: Eight colours cannot separate sixteen schemes, so markers and line styles do the rest;
#: schemes compared in the same figure differ in colour *and* marker.
SCHEME_STYLE: dict[str, dict[str, str]] = {
    "none": {"color": _C["black"], "marker": "x", "linestyle": ":"},
    "sinusoidal": {"color": _C["blue"], "marker": "o", "linestyle": "-"},
    "learned": {"color": _C["orange"], "marker": "s", "linestyle": "-"},
    "shaw": {"color": _C["green"], "marker": "^", "linestyle": "-"},
    "xl": {"color": _C["sky"], "marker": "v", "linestyle": "-"},
    "t5": {"color": _C["purple"], "marker": "D", "linestyle": "-"},
    "alibi": {"color": _C["vermillion"], "marker": "P", "linestyle": "-"},
    "rope": {"color": _C["yellow"], "marker": "*", "linestyle": "-"},
    "rope_pi": {"color": _C["blue"], "marker": "<", "linestyle": "--"},
    "ntk": {"color": _C["orange"], "marker": ">", "linestyle": "--"},
    "dynamic": {"color": _C["green"], "marker": "h", "linestyle": "--"},
    "yarn": {"color": _C["vermillion"], "marker": "X", "linestyle": "--"},
    "llama3": {"color": _C["purple"], "marker": "d", "linestyle": "--"},
    "longrope": {"color": _C["sky"], "marker": "p", "linestyle": "--"},
    "window": {"color": _C["black"], "marker": "1", "linestyle": "-."},
    "trained_long": {"color": _C["black"], "marker": "o", "linestyle": "--"},
}


def scheme_style(name: str, **overrides) -> dict[str, str]:
    """The plotting keywords of scheme ``name`` (see :data:`SCHEME_STYLE`), plus overrides.

    Raises:
        ValueError: ``name`` is not one of the keys of :data:`SCHEME_STYLE`.
    """
    if name not in SCHEME_STYLE:
        raise ValueError(f"name must be one of {sorted(SCHEME_STYLE)}, got {name!r}")
    return {**SCHEME_STYLE[name], **overrides}


def use_book_style() -> None:
    """Set matplotlib defaults for the book: HiDPI output, readable fonts, Okabe-Ito.

    Figures default to 6.4 x 3.6 inches with 11 pt text. In a notebook, inline figures
    are rendered at twice their display resolution ("retina"), so they stay sharp on
    HiDPI screens while keeping their size on the page; saved files use 200 dpi.
    matplotlib is imported here, not when the library loads.
    """
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 200,
            "figure.figsize": (6.4, 3.6),
            "font.size": 11,
            "axes.titlesize": 11,
            "axes.labelsize": 11,
            "legend.fontsize": 10,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "lines.markersize": 5,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": SEQUENTIAL_CMAP,
            "axes.prop_cycle": mpl.cycler(color=list(OKABE_ITO.values())),
        }
    )
    try:  # only inside IPython: twice the pixels, same size on the page
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        if get_ipython() is not None:
            set_matplotlib_formats("retina")
    except ImportError:
        pass
