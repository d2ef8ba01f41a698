"""The graded assignments: built with Otter Assign, graded with Otter Run (no Docker, no
network), the reference solution gets full marks and a buggy one partial marks with the
checker's diagnosis in its feedback.

One assignment per part of the book (``assignments/``, ``scripts/make_assignments.py``).
The buggy solutions are the typical mistakes the book's checkers name; the expected
feedback is the checker's own message for the buggy function, computed here.
"""

import json
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import make_assignments  # noqa: E402

pytest.importorskip("otter", reason="otter-grader is in requirements.txt")
from posenc_lib.book.exercises import absolute, relative, rope  # noqa: E402

PARTS = ("part1_absolute", "part2_relative", "part3_long_contexts", "part4_engineering")

# One typical mistake per part: (function replaced, its buggy code, question it breaks,
# the diagnosis the feedback must contain: a checker's message or, where the library has
# no checker for the question (part 3), the hidden test's own hint).
BUGS = {
    "part1_absolute": (
        "sinusoidal_table",
        """
def sinusoidal_table(seq_len, d_model, base=10000.0):
    pos = torch.arange(seq_len, dtype=torch.float64)[:, None]
    omega = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    table = torch.empty(seq_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.cos(pos * omega)
    table[:, 1::2] = torch.sin(pos * omega)
    return table.float()
""",
        "q1_table",
        absolute.check_sinusoidal_table,
    ),
    "part2_relative": (
        "alibi_slopes",
        """
def alibi_slopes(num_heads):
    return torch.tensor([2.0 ** (-8.0 * h / num_heads) for h in range(1, num_heads + 1)])
""",
        "q3_alibi",
        relative.check_alibi_slopes,
    ),
    "part3_long_contexts": (
        "ntk_base",
        """
def ntk_base(base, factor, head_dim):
    return base * factor
""",
        "q3_ntk",
        "b * s divides the slowest pair by s**((d-2)/d), not by s",
    ),
    "part4_engineering": (
        "interleaved_to_half",
        """
def interleaved_to_half(W, num_heads):
    d = W.shape[0]
    perm = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])
    return W[perm]
""",
        "q1_convert",
        rope.check_layout_conversion,
    ),
}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _solution_lines(source: Path) -> set[str]:
    """The code lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` of a source."""
    lines, inside = set(), False
    for cell in _cells(source):
        if cell["cell_type"] != "code":
            continue
        for line in _text(cell).splitlines():
            if line.strip() in ("# BEGIN SOLUTION", "# END SOLUTION"):
                inside = line.strip() == "# BEGIN SOLUTION"
            elif inside and len(line.strip()) > 3:
                lines.add(line.strip())
    return lines


def _expected_diagnosis(part: str) -> str:
    _, code, _, check = BUGS[part]
    if isinstance(check, str):
        return check
    scope = {"torch": torch}
    exec(code, scope)  # noqa: S102  (the buggy solution above, run here as in the notebook)
    result = check(scope[BUGS[part][0]])
    assert not result, f"the checker accepts the buggy {BUGS[part][0]}"
    return result.message


def _buggy_notebook(teacher: Path, part: str, dest: Path) -> Path:
    name, code, _, _ = BUGS[part]
    nb = json.loads(teacher.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if _text(c).lstrip().startswith(f"def {name}(")]
    assert len(cells) == 1, f"{part}: no single solution cell defining {name}"
    cells[0]["source"] = code.strip("\n")
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / teacher.name
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def _grade(submission: Path, autograder: Path) -> dict:
    """``otter run`` (no container): per question ``(score, max_score, feedback)``."""
    out = submission.parent
    cmd = [str(make_assignments.OTTER), "run", "--no-logo", "-a", str(autograder)]
    done = subprocess.run(
        [*cmd, "-o", str(out), str(submission)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tests = json.loads((out / "results.json").read_text(encoding="utf-8"))["tests"]
    return {
        t["name"]: (t["score"], t["max_score"], t.get("output", ""))
        for t in tests
        if t.get("max_score") is not None
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every assignment built (tests not rerun by Otter Assign: grading below does it)."""
    out = tmp_path_factory.mktemp("assignments")
    return make_assignments.build(out, run_tests=False, jobs=2)


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """``{(part, "reference"|"buggy"|"blank"): results}``, graded two at a time."""
    root = tmp_path_factory.mktemp("graded")
    jobs = {}
    for part in PARTS:
        paths = built[part]
        ref_dir = root / part / "reference"
        ref_dir.mkdir(parents=True)
        reference = ref_dir / paths["teacher"].name
        reference.write_bytes(paths["teacher"].read_bytes())
        jobs[part, "reference"] = (reference, paths["autograder"])
        buggy = _buggy_notebook(paths["teacher"], part, root / part / "buggy")
        jobs[part, "buggy"] = (buggy, paths["autograder"])
    # The student's notebook handed back untouched: the public tests earn nothing.
    blank = root / "blank" / built[PARTS[0]]["student"].name
    blank.parent.mkdir()
    blank.write_bytes(built[PARTS[0]]["student"].read_bytes())
    jobs[PARTS[0], "blank"] = (blank, built[PARTS[0]]["autograder"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(_grade, *args) for key, args in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def test_one_assignment_per_part():
    assert [p.stem for p in make_assignments.sources()] == list(PARTS)


@pytest.mark.parametrize("part", PARTS)
def test_what_a_teacher_uploads(built, part):
    paths = built[part]
    student, teacher = _cells(paths["student"]), _cells(paths["teacher"])
    student_code = "\n".join(_text(c) for c in student if c["cell_type"] == "code")
    teacher_code = "\n".join(_text(c) for c in teacher if c["cell_type"] == "code")
    # The solutions are in the teacher's version, and not a line of them in the student's.
    solutions = _solution_lines(ROOT / "assignments" / f"{part}.ipynb")
    assert len(solutions) >= 6
    student_lines = {line.strip() for line in student_code.splitlines()}
    teacher_lines = {line.strip() for line in teacher_code.splitlines()}
    assert solutions <= teacher_lines
    assert not solutions & student_lines, solutions & student_lines
    assert "BEGIN SOLUTION" not in student_code and "HIDDEN" not in student_code
    assert student_code.count("    ...") >= 3
    # Install cell from _config.yml's repository URL; runs where nothing is installed.
    assert make_assignments.repository_url() in student_code
    # The autograder bundle: every question with public and hidden tests.
    with zipfile.ZipFile(paths["autograder"]) as bundle:
        names = bundle.namelist()
        config = json.loads(bundle.read("otter_config.json"))
        tests = [bundle.read(n).decode() for n in names if n.startswith("tests/")]
    assert config["assignment_name"] == part
    assert {"run_autograder", "setup.sh", "environment.yml"} <= set(names)
    assert 3 <= len(tests) <= 5
    assert any("'hidden': True" in t for t in tests)
    public = json.loads(paths["student"].read_text())["metadata"]["otter"]["tests"]
    assert set(public) == {
        n.removeprefix("tests/").removesuffix(".py") for n in names if n.startswith("tests/")
    }
    for question in public.values():
        cases = [c for s in question["suites"] for c in s["cases"]]
        assert cases and not any(c["hidden"] for c in cases), "hidden test in the student copy"


@pytest.mark.parametrize("part", PARTS)
def test_reference_solution_gets_full_marks(graded, part):
    results = graded[part, "reference"]
    assert 3 <= len(results) <= 5
    for question, (score, possible, feedback) in results.items():
        assert score == possible > 0, f"{question}: {score}/{possible}\n{feedback}"


@pytest.mark.parametrize("part", PARTS)
def test_buggy_solution_gets_partial_marks_and_the_diagnosis(graded, part):
    results = graded[part, "buggy"]
    broken = BUGS[part][2]
    score = sum(s for s, _, _ in results.values())
    possible = sum(p for _, p, _ in results.values())
    assert 0 < score < possible
    for question, (s, p, _) in results.items():
        if question == broken:
            assert s < p, f"{question}: the buggy solution kept all its points"
        else:
            assert s == p, f"{question}: points lost to a bug in another question"
    # Otter wraps long lines of its report: compare with whitespace normalised.
    feedback = " ".join(results[broken][2].split())
    assert " ".join(_expected_diagnosis(part).split()) in feedback, feedback


def test_blank_notebook_gets_no_marks(graded):
    results = graded[PARTS[0], "blank"]
    assert len(results) == 4
    assert all(score == 0 < possible for score, possible, _ in results.values()), results
