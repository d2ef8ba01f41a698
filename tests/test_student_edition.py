"""Students never see solutions unless the teacher wants them to.

On the full site a solution's prose, code and output sit in one dropdown (gated
``solution-start`` / ``solution-end``); the student edition (notebooks and site) holds
every exercise statement and no trace of any solution. The site checks run when
``STUDENT_EDITION`` names a built edition (``make test-student`` sets it).
"""

import json
import os
import re
import sys
from html import unescape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import student_edition  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISE = re.compile(r"^```{exercise}[^\n]*\n:label: (\S+)", re.M)


def _md(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def _code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "source": source}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _solution_code(cells: list[dict]) -> list[str]:
    return [
        _text(cells[i]).strip()
        for _, a, b in student_edition.solution_spans(cells)
        for i in range(a, b + 1)
        if cells[i]["cell_type"] == "code" and _text(cells[i]).strip()
    ]


def test_strip_removes_a_gated_solution_and_keeps_the_rest():
    nb = {
        "cells": [
            _md("```{exercise}\n:label: ex-a\n\nCompute it.\n```"),
            _code("starter = 1"),
            _md("```{solution-start} ex-a\n:class: dropdown\n```\nThe idea."),
            _code("answer = 42"),
            _md("```{solution-end}\n```"),
            _md("Next section."),
        ]
    }
    kept = [_text(c) for c in student_edition.strip_solutions(nb)["cells"]]
    assert kept == [_text(nb["cells"][i]) for i in (0, 1, 5)]


def test_strip_removes_a_plain_solution_block_from_prose():
    nb = {"cells": [_md("Before.\n\n```{solution} ex-a\n:class: dropdown\n\nSecret.\n```\nAfter.")]}
    text = _text(student_edition.strip_solutions(nb)["cells"][0])
    assert "Secret" not in text and "Before." in text and "After." in text


def test_unbalanced_solutions_are_an_error():
    with pytest.raises(ValueError, match="never ended"):
        student_edition.solution_spans([_md("```{solution-start} ex-a\n```")])
    with pytest.raises(ValueError, match="without solution-start"):
        student_edition.solution_spans([_md("```{solution-end}\n```")])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_one_gated_solution(path):
    """Solutions are gated, so their code and output are inside the dropdown."""
    cells = _cells(path)
    prose = "\n".join(_text(c) for c in cells if c["cell_type"] == "markdown")
    exercises = EXERCISE.findall(prose)
    solved = [label for label, _, _ in student_edition.solution_spans(cells)]
    assert sorted(solved) == sorted(exercises), f"{path.name}: exercises {exercises}"
    assert "```{solution}" not in prose, f"{path.name}: use solution-start/solution-end"


def _marker_lines(cells: list[dict]) -> list[str]:
    """For each solution code cell, its longest line, if no cell outside a solution has it."""
    inside = _solution_code(cells)
    outside = "\n".join(
        _text(c) for c in student_edition.strip_solutions({"cells": cells})["cells"]
    )
    lines = [max(code.splitlines(), key=len).strip() for code in inside]
    return [line for line in lines if len(line) > 12 and line not in outside]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_notebook_has_no_solution(path):
    nb = json.loads(path.read_text())
    student = student_edition.strip_solutions(nb)
    text = "\n".join(_text(c) for c in student["cells"])
    assert "{solution" not in text
    left = {_text(c).strip() for c in student["cells"] if c["cell_type"] == "code"}
    leaked = [code for code in _solution_code(nb["cells"]) if code in left]
    assert not leaked, f"{path.name}: solution code outside its solution: {leaked[:1]}"
    prose = "\n".join(_text(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert EXERCISE.findall(text) == EXERCISE.findall(prose), f"{path.name}: exercise removed"


EDITION = os.environ.get("STUDENT_EDITION")
site = pytest.mark.skipif(not EDITION, reason="set STUDENT_EDITION (make test-student)")


@site
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_built_student_edition_has_no_solution(path):
    edition = Path(EDITION)
    handout = (edition / "notebooks" / path.name).read_text()
    page = edition / "src" / "_build" / "html" / "notebooks" / f"{path.stem}.html"
    html = page.read_text()
    visible = unescape(re.sub(r"<[^>]+>", "", html))
    assert 'class="solution' not in html, f"{page.name}: a solution box on the student site"
    for line in _marker_lines(_cells(path)):
        assert json.dumps(line)[1:-1] not in handout, f"{path.name} handout: {line!r}"
        assert line not in visible, f"{page.name}: solution code {line!r}"
    for label in EXERCISE.findall(handout):
        assert f'id="{label}"' in html, f"{page.name}: exercise {label} missing"
