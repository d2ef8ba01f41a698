"""Build the graded assignments (one per part of the book) with Otter-Grader.

Each source notebook ``assignments/partN_*.ipynb`` is in Otter Assign's format: questions
with solutions between ``# BEGIN SOLUTION`` / ``# END SOLUTION`` and public and hidden
tests that call the book's checkers (:mod:`posenc_lib.book.exercises`) or compare with the
library. For every source this script writes, under ``OUT/<name>/``:

- ``student/<name>.ipynb``: the notebook to hand out (no solutions, public tests only);
- ``teacher/<name>.ipynb``: the same notebook with the solutions;
- ``autograder/<name>-autograder.zip``: what a teacher uploads to the grading platform
  (Gradescope-style zip: hidden tests, ``otter_config.json``, ``environment.yml``).

Before ``otter assign`` runs, the notebook's cell tagged ``install`` is written from the
repository URL of ``_config.yml`` (as the chapters' install cells are), and the autograder's
``requirements.txt`` is written from it too. By default Otter Assign also runs every test
against the solutions (``--no-run-tests`` skips that: the grading test does it anyway).

Grade a submission without Docker or network access:
``otter run -a OUT/<name>/autograder/<name>-autograder.zip submission.ipynb``.

Usage: python scripts/make_assignments.py [OUT] [--no-run-tests] [--jobs N]
(default OUT: _build/assignments)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from install_cell import install_source, repository_url  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "assignments"
OTTER = Path(sys.executable).with_name("otter")
OTTER_VERSION = "7.0.0"


def sources() -> list[Path]:
    """The assignment source notebooks, in part order."""
    return sorted(SOURCES.glob("part*.ipynb"))


def assignment_install_source(url: str) -> str:
    """The install cell of an assignment: the book's library, and Otter for the checks."""
    return (
        install_source(url)
        + "\n"
        + 'if importlib.util.find_spec("otter") is None:\n'
        + f'    package = "otter-grader=={OTTER_VERSION}"\n'
        + '    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", package])'
    )


def grading_requirements(url: str) -> str:
    """``requirements.txt`` of the autograder: CPU torch and the library at the book's URL."""
    return (
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        "torch==2.13.0\n"
        f"posenc-lib @ git+{url}\n"
    )


def with_install_cell(nb: dict, source: str) -> dict:
    """``nb`` with the code of its cell tagged ``install`` replaced by ``source``."""
    cells, found = [], False
    for cell in nb["cells"]:
        if "install" in cell.get("metadata", {}).get("tags", []):
            cell = {**cell, "source": source.splitlines(keepends=True)}
            found = True
        cells.append(cell)
    if not found:
        raise ValueError("the assignment has no code cell tagged 'install'")
    return {**nb, "cells": cells}


def build_one(source: Path, out: Path, *, run_tests: bool = True) -> dict[str, Path]:
    """Run Otter Assign on one source notebook; return the paths of what it produced."""
    name = source.stem
    url = repository_url()
    nb = with_install_cell(
        json.loads(source.read_text(encoding="utf-8")), assignment_install_source(url)
    )
    with tempfile.TemporaryDirectory(prefix=f"assign-{name}-") as tmp:
        work = Path(tmp)
        (work / source.name).write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
        (work / "requirements.txt").write_text(grading_requirements(url), encoding="utf-8")
        cmd = [str(OTTER), "assign", source.name, "dist"]
        if not run_tests:
            cmd.append("--no-run-tests")
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"otter assign failed for {name}:\n{done.stdout}\n{done.stderr}")
        dist = work / "dist"
        (zip_path,) = (dist / "autograder").glob(f"{name}-autograder_*.zip")
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        paths = {
            "student": target / "student" / f"{name}.ipynb",
            "teacher": target / "teacher" / f"{name}.ipynb",
            "autograder": target / "autograder" / f"{name}-autograder.zip",
        }
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dist / "student" / f"{name}.ipynb", paths["student"])
        shutil.copy2(dist / "autograder" / f"{name}.ipynb", paths["teacher"])
        shutil.copy2(zip_path, paths["autograder"])
    return paths


def build(out: Path, *, run_tests: bool = True, jobs: int = 2) -> dict[str, dict[str, Path]]:
    """Build every assignment into ``out``; ``{name: {"student"|"teacher"|"autograder": path}}``."""
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {s.stem: pool.submit(build_one, s, out, run_tests=run_tests) for s in sources()}
        return {name: future.result() for name, future in futures.items()}


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    jobs = 2
    if "--jobs" in argv:
        jobs = int(argv[argv.index("--jobs") + 1])
        args.remove(str(jobs))
    out = Path(args[0]) if args else ROOT / "_build" / "assignments"
    built = build(out.resolve(), run_tests="--no-run-tests" not in argv, jobs=jobs)
    for name, paths in built.items():
        print(f"{name}:")
        for kind, path in paths.items():
            print(f"  {kind:10s} {path.relative_to(out.resolve().parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
