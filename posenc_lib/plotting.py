"""Plotting helpers shared by the chapters: one book style, colour-blind-safe colormaps.

Call :func:`use_book_style` explicitly; importing this module changes nothing.
"""

from __future__ import annotations

__all__ = ["use_book_style", "SEQUENTIAL_CMAP", "DIVERGING_CMAP"]

#: Colour-blind-safe, perceptually uniform colormaps used for every heatmap in the book.
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "cividis"


def use_book_style() -> None:
    """Set matplotlib defaults for the book: modest DPI, readable fonts, viridis.

    Updates ``matplotlib.rcParams`` (figure size ``(6.4, 3.6)`` inches at 80 dpi, the
    Okabe-Ito colour cycle); matplotlib is imported here, not when the library loads.
    """
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": 80,
            "savefig.dpi": 80,
            "figure.figsize": (6.4, 3.6),
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": SEQUENTIAL_CMAP,
            "axes.prop_cycle": mpl.cycler(
                # Okabe-Ito palette: distinguishable under the common colour blindnesses.
                color=[
                    "#0072B2",
                    "#E69F00",
                    "#009E73",
                    "#D55E00",
                    "#CC79A7",
                    "#56B4E9",
                    "#F0E442",
                    "#000000",
                ]
            ),
        }
    )
