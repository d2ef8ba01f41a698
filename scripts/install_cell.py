"""Write the first code cell of every chapter: install the library where it is missing.

On Colab, Binder or a student's bare Python, the cell installs ``posenc-lib[book]`` from
the book's repository; where the library is already importable (the book's own build,
a local clone) it does nothing. The repository URL is read from ``_config.yml``
(``repository.url``), the one place it is written. The cell is tagged ``hide-cell``
(collapsed on the website) and ``install`` (so this script finds it again).

Usage: python scripts/install_cell.py [--check] [NOTEBOOK ...]   (default: every chapter)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TAGS = ["hide-cell", "install"]


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` of the book's ``_config.yml``."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"]


def install_source(url: str) -> str:
    """The code of the install cell for the repository at ``url``."""
    return (
        "# Colab, Binder or a fresh Python: install the book's library if it is missing.\n"
        "# Where posenc_lib is already installed this cell does nothing.\n"
        "import importlib.util\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if importlib.util.find_spec("posenc_lib") is None:\n'
        f'    url = "{url}"\n'
        '    package = f"posenc-lib[book] @ git+{url}"\n'
        '    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", package])'
    )


def with_install_cell(nb: dict, source: str) -> dict:
    """Notebook ``nb`` whose first code cell is the install cell (replaced or inserted)."""
    lines = source.splitlines(keepends=True)
    cell = {
        "cell_type": "code",
        "id": "install",
        "execution_count": None,
        "metadata": {"tags": list(TAGS)},
        "outputs": [],
        "source": lines,
    }
    cells = [c for c in nb["cells"] if "install" not in c.get("metadata", {}).get("tags", [])]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    return {**nb, "cells": cells[:first_code] + [cell] + cells[first_code:]}


def main(argv: list[str]) -> int:
    source = install_source(repository_url())
    stale = []
    named = [Path(a) for a in argv[1:] if not a.startswith("--")]
    for path in named or sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        new = with_install_cell(nb, source)
        if new != nb:
            stale.append(path.name)
            if "--check" not in argv:
                text = json.dumps(new, indent=1, ensure_ascii=False) + "\n"
                path.write_text(text, encoding="utf-8")
    if "--check" in argv and stale:
        print(f"install cell missing or stale (run python scripts/install_cell.py): {stale}")
        return 1
    print(f"{'checked' if '--check' in argv else 'updated'} {len(stale)} stale notebook(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
