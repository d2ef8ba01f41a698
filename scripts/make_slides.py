"""Build one reveal.js slide deck per part of the book from the book's own figures.

A deck's source is an outline, ``slides/part-N.yml``: the part's caption (as in
``_toc.yml``), then slides with a title, a few bullets and, optionally, a figure named by
its MyST label in the chapter, e.g. ``fig-sin-heatmap`` (the ``mystnb.figure.name`` of
the cell's metadata) or a glue name (``glue("alibi-grid-8", fig)``). The figure itself,
its caption and its alt text are taken from the *executed* notebooks of the book build
(``_build/jupyter_execute/notebooks/*.ipynb``), so a deck always shows what the book
shows; a label that no executed notebook carries is an error naming it.

Output (``make slides``): ``OUT/part-N.html``, ``OUT/figures/<label>.<ext>`` and
``OUT/reveal.js/`` (copied from ``slides/node_modules/reveal.js/dist``, npm). Nothing is
fetched from another host: the theme embeds its fonts and no plugin that loads a CDN
(math, highlight) is used. Captions are shown as plain text.

Usage::

    python scripts/make_slides.py [--executed DIR] [--out DIR] [--reveal DIR] [PART ...]
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = ROOT / "_build" / "jupyter_execute" / "notebooks"
OUTLINES = ROOT / "slides"
OUT = ROOT / "_build" / "slides"
REVEAL = ROOT / "slides" / "node_modules" / "reveal.js" / "dist"
# The files of reveal.js's dist/ a deck uses: white.css embeds its font (no Google Fonts,
# unlike several other themes); notes.js gives the speaker view (key "s").
REVEAL_FILES = ("reset.css", "reveal.css", "reveal.js", "theme/white.css", "plugin/notes.js")
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
SLIDE_KEYS = {"title", "bullets", "figure", "notes"}


class SlideError(ValueError):
    """An outline that cannot be built: unknown figure, bad key, missing part."""


@dataclass(frozen=True)
class Figure:
    label: str
    notebook: str  # the executed notebook's stem, e.g. "02_sinusoidal"
    mime: str
    data: bytes
    caption: str
    alt: str
    width: int | None  # CSS pixels, for HiDPI ('retina') PNGs


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source


def _image_output(cell: dict) -> tuple[str, bytes, int | None] | None:
    """The first image among a cell's outputs: (mime, bytes, width in CSS px or None)."""
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        for mime in IMAGE_TYPES:
            if mime in data:
                raw = _text(data[mime])
                blob = raw.encode() if mime == "image/svg+xml" else base64.b64decode(raw)
                width = output.get("metadata", {}).get(mime, {}).get("width")
                return mime, blob, width
    return None


def _glue_outputs(cell: dict) -> list[tuple[str, dict]]:
    """(name, output) of every myst-nb ``glue`` output of a cell."""
    found = []
    for output in cell.get("outputs", []):
        scrap = output.get("metadata", {}).get("scrapbook")
        if scrap and "name" in scrap:
            found.append((scrap["name"], output))
    return found


def index_figures(executed: Path) -> dict[str, Figure]:
    """Every labelled figure of the executed notebooks in ``executed``, by label.

    Raises:
        SlideError: the folder has no notebook, or two notebooks use the same label.
    """
    paths = sorted(executed.glob("*.ipynb"))
    if not paths:
        raise SlideError(f"no executed notebook in {executed}: build the book first")
    figures: dict[str, Figure] = {}

    def add(fig: Figure) -> None:
        if fig.label in figures and figures[fig.label].notebook != fig.notebook:
            raise SlideError(
                f"figure label {fig.label!r} is used in both {figures[fig.label].notebook} "
                f"and {fig.notebook}"
            )
        figures[fig.label] = fig

    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            meta = cell.get("metadata", {}).get("mystnb", {})
            name = meta.get("figure", {}).get("name")
            image = _image_output(cell)
            if name and image:
                mime, blob, width = image
                add(
                    Figure(
                        name, path.stem, mime, blob, meta["figure"].get("caption", ""),
                        meta.get("image", {}).get("alt", ""), width,
                    )
                )
            for glue_name, output in _glue_outputs(cell):
                glued = _image_output({"outputs": [output]})
                if glued:
                    mime, blob, width = glued
                    add(Figure(glue_name, path.stem, mime, blob, "", "", width))
    return figures


def plain(text: str) -> str:
    """MyST/LaTeX markup of a caption as readable plain text (no MathJax in the decks)."""
    text = re.sub(r"\{numref\}`([^`<]*?)\s*(<[^>]*>)?`", "an earlier figure", text)
    text = re.sub(r"\{[a-z:]+\}`([^`<]*?)\s*(<[^>]*>)?`", r"\1", text)
    text = re.sub(r"\\(?:text|mathrm|operatorname|mathbf)\{([^}]*)\}", r"\1", text)
    for tex, char in {
        r"\lVert": "‖", r"\rVert": "‖", r"\dots": "…", r"\times": "×", r"\pi": "π",
        r"\omega": "ω", r"\theta": "θ", r"\le": "≤", r"\ge": "≥", r"\,": " ",
    }.items():
        text = text.replace(tex, char)
    return text.replace("$", "").replace("{", "").replace("}", "")


def _inline(text: str) -> str:
    """A bullet: HTML-escaped, with `code` spans and **bold**."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def toc_parts(toc_path: Path = ROOT / "_toc.yml") -> list[dict]:
    """The parts of the book: ``[{"caption": ..., "chapters": [file, ...]}, ...]``."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    return [
        {"caption": p["caption"], "chapters": [c["file"] for c in p.get("chapters", [])]}
        for p in toc["parts"]
    ]


def load_outline(path: Path) -> dict:
    """A validated outline: ``part`` (caption), ``title``, ``slides`` (list of dicts).

    Raises:
        SlideError: a missing key, an unknown slide key, or an empty slide.
    """
    outline = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("part", "slides"):
        if key not in (outline or {}):
            raise SlideError(f"{path.name}: missing key {key!r}")
    for i, slide in enumerate(outline["slides"], 1):
        unknown = set(slide) - SLIDE_KEYS
        if unknown:
            raise SlideError(f"{path.name}, slide {i}: unknown keys {sorted(unknown)}")
        if "title" not in slide:
            raise SlideError(f"{path.name}, slide {i}: every slide needs a title")
    return outline


def figure_labels(outline: dict) -> list[str]:
    return [s["figure"] for s in outline["slides"] if s.get("figure")]


def _figure_html(fig: Figure, src: str) -> str:
    # HiDPI PNGs carry their CSS width; cap the image there, keeping its aspect ratio.
    style = f' style="max-width:min({fig.width}px, 100%)"' if fig.width else ""
    caption = plain(fig.caption)
    alt = html.escape(fig.alt or caption or fig.label, quote=True)
    where = f"chapter {fig.notebook}"
    return (
        f'<figure><img src="{src}" alt="{alt}"{style}>'
        f"<figcaption>{html.escape(caption)} <span class=\"src\">({html.escape(where)}, "
        f"{html.escape(fig.label)})</span></figcaption></figure>"
    )


CSS = """
.reveal h1, .reveal h2 { text-transform: none; }
.reveal h2 { font-size: 1.4em; }
.reveal ul { font-size: 0.8em; }
.reveal figure { margin: 0.3em auto; }
.reveal figure img { max-height: 52vh; max-width: 100%; width: auto; height: auto; margin: 0; }
.reveal figcaption { font-size: 0.45em; line-height: 1.3; color: #333; }
.reveal figcaption .src { color: #666; }
.reveal .chapters { font-size: 0.7em; }
"""


def render_deck(number: int, outline: dict, chapters: list[str], figures: dict[str, Figure],
                fig_dir: str = "figures") -> tuple[str, dict[str, Figure]]:
    """HTML of one deck and the figures it uses (label -> Figure).

    Raises:
        SlideError: naming every label of the outline that no executed notebook carries.
    """
    missing = [label for label in figure_labels(outline) if label not in figures]
    if missing:
        raise SlideError(
            f"part {number} ({outline['part']}): figure(s) not found in the executed "
            f"notebooks: {', '.join(missing)}"
        )
    title = outline.get("title", outline["part"])
    used: dict[str, Figure] = {}
    sections = [
        "<section><h1>{}</h1><p>Part {}: {}</p><ul class=\"chapters\">{}</ul></section>".format(
            html.escape(title), number, html.escape(outline["part"]),
            "".join(f"<li>{html.escape(c)}</li>" for c in chapters),
        )
    ]
    for slide in outline["slides"]:
        body = [f"<h2>{_inline(slide['title'])}</h2>"]
        bullets = slide.get("bullets") or []
        if bullets:
            body.append("<ul>" + "".join(f"<li>{_inline(b)}</li>" for b in bullets) + "</ul>")
        if slide.get("figure"):
            fig = figures[slide["figure"]]
            used[fig.label] = fig
            src = f"{fig_dir}/{fig.label}.{IMAGE_TYPES[fig.mime]}"
            body.append(_figure_html(fig, src))
        if slide.get("notes"):
            body.append(f"<aside class=\"notes\">{html.escape(slide['notes'])}</aside>")
        sections.append("<section>" + "".join(body) + "</section>")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="reveal.js/reset.css">
<link rel="stylesheet" href="reveal.js/reveal.css">
<link rel="stylesheet" href="reveal.js/theme/white.css">
<style>{CSS}</style>
</head>
<body>
<div class="reveal"><div class="slides">
{chr(10).join(sections)}
</div></div>
<script src="reveal.js/reveal.js"></script>
<script src="reveal.js/plugin/notes.js"></script>
<script>Reveal.initialize({{hash: true, slideNumber: true, plugins: [RevealNotes]}});</script>
</body>
</html>
"""
    return page, used


def copy_reveal(reveal: Path, out: Path) -> None:
    """Copy the reveal.js files a deck loads into ``out/reveal.js``.

    Raises:
        SlideError: a file is missing (run ``make slides-deps`` / ``npm ci`` in slides/).
    """
    for rel in REVEAL_FILES:
        src = reveal / rel
        if not src.is_file():
            raise SlideError(f"reveal.js file {src} is missing: run 'npm ci' in slides/")
        dst = out / "reveal.js" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def _chapter_title(executed: Path, chapter: str) -> str:
    path = executed / (Path(chapter).name + ".ipynb")
    if path.is_file():
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            match = re.search(r"^# (.+)$", _text(cell["source"]), re.M)
            if cell["cell_type"] == "markdown" and match:
                return match[1].strip()
    return Path(chapter).name


def build(executed: Path = EXECUTED, out: Path = OUT, outlines: Path = OUTLINES,
          reveal: Path = REVEAL, toc: Path = ROOT / "_toc.yml",
          parts: list[int] | None = None) -> list[Path]:
    """Write every deck (or those numbered in ``parts``); returns the HTML paths."""
    book_parts = toc_parts(toc)
    paths = sorted(outlines.glob("part-*.yml"), key=lambda p: int(p.stem.split("-")[1]))
    if parts:
        paths = [p for p in paths if int(p.stem.split("-")[1]) in parts]
    if not paths:
        raise SlideError(f"no outline slides/part-N.yml in {outlines}")
    figures = index_figures(executed)
    out.mkdir(parents=True, exist_ok=True)
    copy_reveal(reveal, out)
    written = []
    for path in paths:
        number = int(path.stem.split("-")[1])
        outline = load_outline(path)
        if not 1 <= number <= len(book_parts):
            raise SlideError(f"{path.name}: the book has parts 1 to {len(book_parts)}")
        caption = book_parts[number - 1]["caption"]
        if outline["part"] != caption:
            raise SlideError(
                f"{path.name}: part {number} of _toc.yml is {caption!r}, "
                f"not {outline['part']!r}"
            )
        chapters = [_chapter_title(executed, c) for c in book_parts[number - 1]["chapters"]
                    if c.startswith("notebooks/")]
        page, used = render_deck(number, outline, chapters, figures)
        for fig in used.values():
            dst = out / "figures" / f"{fig.label}.{IMAGE_TYPES[fig.mime]}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(fig.data)
        target = out / f"part-{number}.html"
        target.write_text(page, encoding="utf-8")
        written.append(target)
    index = "".join(
        f'<li><a href="{p.name}">{html.escape(p.stem)}</a></li>' for p in written
    )
    (out / "index.html").write_text(
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Slides</title>"
        f"</head><body><h1>Slides, one deck per part</h1><ul>{index}</ul></body></html>\n",
        encoding="utf-8",
    )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", type=int, help="part numbers (default: all)")
    parser.add_argument("--executed", type=Path, default=EXECUTED,
                        help="folder of executed notebooks (default: the book build's)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--outlines", type=Path, default=OUTLINES)
    parser.add_argument("--reveal", type=Path, default=REVEAL,
                        help="reveal.js dist/ folder (default: slides/node_modules)")
    args = parser.parse_args(argv)
    try:
        written = build(args.executed, args.out, args.outlines, args.reveal,
                        parts=args.parts or None)
    except SlideError as err:
        print(f"make_slides: error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
