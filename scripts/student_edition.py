"""Build the sources of the student edition: the book with every solution removed.

A solution in a chapter is written with sphinx-exercise's gated directives, so that its
prose, code and output sit together inside one dropdown on the full site::

    ```{solution-start} ex-label        <- a markdown cell
    :class: dropdown
    ```
    prose ...
    <code cells>                         <- the solution's code and outputs
    ```{solution-end}                   <- a markdown cell
    ```

The student edition drops every cell from ``solution-start`` to ``solution-end`` and
every plain ``{solution}`` block of the prose pages, and keeps the exercise statements,
starter code and checkers. The copy of the book in ``OUT/src`` is then built as usual
(``make student-edition``), and ``OUT/notebooks`` holds the notebooks to hand out.

Usage: python scripts/student_edition.py [OUT]     (default _build/student)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
START = re.compile(r"^```{solution-start}\s+(\S+)", re.M)
END = re.compile(r"^```{solution-end}", re.M)
# A non-gated solution directive (in prose pages), with any fence length of backticks.
PLAIN = re.compile(r"^(`{3,})\{solution\}[^\n]*\n.*?^\1[ \t]*$\n?", re.M | re.S)
COPIED = ("book", "notebooks", "scripts", "posenc_lib", "_toc.yml", "pyproject.toml")


def solution_spans(cells: list[dict]) -> list[tuple[str, int, int]]:
    """``(label, first, last)`` cell indices of each gated solution, ends included.

    Raises:
        ValueError: a ``solution-start`` without its ``solution-end``, or nested ones.
    """
    spans, open_at, label = [], None, None
    for i, cell in enumerate(cells):
        text = "".join(cell["source"]) if cell["cell_type"] == "markdown" else ""
        start, end = START.search(text), END.search(text)
        if start:
            if open_at is not None:
                raise ValueError(f"cell {i}: solution-start {start[1]} inside {label}")
            open_at, label = i, start[1]
        if end:
            if open_at is None:
                raise ValueError(f"cell {i}: solution-end without solution-start")
            spans.append((label, open_at, i))
            open_at = None
    if open_at is not None:
        raise ValueError(f"cell {open_at}: solution-start {label} is never ended")
    return spans


def strip_solutions(nb: dict) -> dict:
    """A copy of notebook ``nb`` without its solutions (gated spans and plain blocks)."""
    drop = {i for _, a, b in solution_spans(nb["cells"]) for i in range(a, b + 1)}
    cells = []
    for i, cell in enumerate(nb["cells"]):
        if i in drop:
            continue
        cell = dict(cell)
        if cell["cell_type"] == "markdown":
            cell["source"] = PLAIN.sub("", "".join(cell["source"]))
        cells.append(cell)
    return {**nb, "cells": cells}


def student_config(config: dict) -> dict:
    """The book's configuration, marked as the student edition, solutions hidden."""
    config = dict(config)
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    sphinx = dict(config.get("sphinx") or {})
    sphinx["config"] = {**(sphinx.get("config") or {}), "hide_solutions": True}
    config["sphinx"] = sphinx
    return config


def write_edition(out: Path) -> Path:
    """Copy the book into ``out/src`` without solutions; notebooks also to ``out/notebooks``."""
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in COPIED:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    web_assets = ROOT / "_build" / "web_assets"
    if web_assets.is_dir():
        shutil.copytree(web_assets, src / "_build" / "web_assets")
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    (src / "_config.yml").write_text(
        yaml.safe_dump(student_config(config), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    handouts = out / "notebooks"
    shutil.rmtree(handouts, ignore_errors=True)
    handouts.mkdir(parents=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = json.dumps(strip_solutions(json.loads(path.read_text())), indent=1)
        (src / "notebooks" / path.name).write_text(text + "\n", encoding="utf-8")
        (handouts / path.name).write_text(text + "\n", encoding="utf-8")
    for path in sorted((src / "book").glob("*.md")):
        path.write_text(PLAIN.sub("", path.read_text(encoding="utf-8")), encoding="utf-8")
    return src


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "_build" / "student")
    print(f"wrote {write_edition(out.resolve())}")
