"""Strip outputs and execution counts from the book's notebooks, keeping cell metadata.

Also gives every notebook the standard Python 3 kernelspec (jupytext conversions lack
one) and drops jupytext's bookkeeping metadata.

Usage: python scripts/strip_notebooks.py [--check] [NOTEBOOK ...]
With --check, change nothing and exit 1 if any notebook is not clean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def has_outputs(nb: dict) -> bool:
    """True if a code cell stores outputs or an execution count, or metadata is not clean."""
    meta = nb.get("metadata", {})
    if meta.get("kernelspec") != KERNELSPEC or "jupytext" in meta:
        return True
    return any(
        c.get("outputs") or c.get("execution_count") is not None
        for c in nb["cells"]
        if c["cell_type"] == "code"
    )


def strip(nb: dict) -> dict:
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    meta = nb.setdefault("metadata", {})
    meta.pop("jupytext", None)
    meta["kernelspec"] = dict(KERNELSPEC)
    meta.setdefault("language_info", {"name": "python"})
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if has_outputs(nb):
            dirty.append(path)
            if not args.check:
                text = json.dumps(strip(nb), indent=1, ensure_ascii=False) + "\n"
                path.write_text(text, encoding="utf-8")
    if args.check and dirty:
        print("notebooks with stored outputs:", *map(str, dirty), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
