"""How the chapters print: text wrapped to the book's 88-column code column, and library
source shown as a highlighted block (on the website and in the PDF alike)."""

from __future__ import annotations

from textwrap import fill

__all__ = ["WIDTH", "show", "python_block"]

#: Width of the book's code column, in characters.
WIDTH = 88


def show(*parts) -> None:
    """``print(*parts)``, with every line longer than :data:`WIDTH` wrapped."""
    text = " ".join(map(str, parts))
    lines = text.split("\n")
    print(
        "\n".join(
            ln if len(ln) <= WIDTH else fill(ln, WIDTH, subsequent_indent="  ") for ln in lines
        )
    )


def python_block(code: str):
    """``code`` as a fenced Markdown code block (language python), which the book
    renders highlighted.

    (IPython's ``Code`` object is typeset as math in the PDF; Markdown is not.)
    """
    from IPython.display import Markdown

    return Markdown(f"```python\n{code}\n```")
