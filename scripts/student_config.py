"""Write the configuration of the student edition: the book's _config.yml without solutions.

sphinx-exercise leaves every `{solution}` out of the pages when `hide_solutions` is true.
Used by `make student-edition`; the output goes to _build/student/html.

Usage: python scripts/student_config.py [CONFIG] [OUTPUT]
"""

import sys
from pathlib import Path

import yaml


def student_config(config: dict, root: Path) -> dict:
    """The book's configuration with solutions hidden and the title marked.

    `root` is the folder of the book's _config.yml: Jupyter Book resolves the paths of
    local extensions against the folder of the config file, so they are made absolute.
    """
    config = dict(config)
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    sphinx = dict(config.get("sphinx") or {})
    sphinx["config"] = {**(sphinx.get("config") or {}), "hide_solutions": True}
    local = sphinx.get("local_extensions") or {}
    sphinx["local_extensions"] = {
        name: str((root / path).resolve()) for name, path in local.items()
    }
    if not sphinx["local_extensions"]:
        del sphinx["local_extensions"]
    config["sphinx"] = sphinx
    return config


def main(argv: list[str]) -> None:
    source = Path(argv[1] if len(argv) > 1 else "_config.yml")
    target = Path(argv[2] if len(argv) > 2 else "_build/student/_config.yml")
    config = student_config(yaml.safe_load(source.read_text(encoding="utf-8")), source.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv)
