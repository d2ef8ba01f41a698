"""Checks on the repository itself: notebooks stored clean, every chapter in the TOC."""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import strip_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 10


def test_notebooks_are_stored_without_outputs():
    dirty = [p.name for p in NOTEBOOKS if strip_notebooks.has_outputs(json.loads(p.read_text()))]
    assert not dirty, f"strip outputs with `make strip`: {dirty}"


def test_strip_keeps_tags_and_removes_outputs():
    nb = {
        "metadata": {"kernelspec": dict(strip_notebooks.KERNELSPEC)},
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 3,
                "metadata": {"tags": ["hide-input"]},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}],
                "source": "print(1)",
            }
        ],
    }
    assert strip_notebooks.has_outputs(nb)
    cell = strip_notebooks.strip(nb)["cells"][0]
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert cell["metadata"]["tags"] == ["hide-input"]
    assert not strip_notebooks.has_outputs(nb)


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    missing = [p.stem for p in NOTEBOOKS if f"notebooks/{p.stem}" not in toc]
    assert not missing, f"add to _toc.yml: {missing}"


def test_every_chapter_has_exercises_and_a_summary():
    """The course kit's promise: every chapter ends with a summary and exercises."""
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert text.count("```{exercise}") >= 2, f"{path.name}: fewer than 2 exercises"
        assert text.count("```{solution-start}") >= text.count("```{exercise}"), path.name
        assert re.search(r"^## (\d+\. )?Summary", text, re.M), f"{path.name}: no summary"
        assert "## References" in text, f"{path.name}: no references section"


def test_widget_cells_are_not_executed_by_the_build():
    """ipywidgets need a live kernel; executed headless they can hang the build (seen:
    a 300 s stall in nbclient). Each explorer cell runs only for readers in Jupyter, and
    the chapter gives a kernel-free counterpart (a browser explorer, a figure or tabs)."""
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and "ipywidgets" in "".join(cell["source"]):
                tags = cell["metadata"].get("tags", [])
                assert {"skip-execution", "nbval-skip"} <= set(tags), path.name


def test_notebook_code_fits_a_phone_and_a_laptop():
    """Code lines of at most 88 characters: no code block scrolls sideways at 1280 px."""
    long = [
        f"{path.name}: {line[:40]}..."
        for path in NOTEBOOKS
        for cell in json.loads(path.read_text())["cells"]
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if len(line) > 88
    ]
    assert not long, f"{len(long)} code lines over 88 characters, e.g. {long[:3]}"
