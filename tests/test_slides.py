"""The slide decks (scripts/make_slides.py): built from a small fake executed notebook, so
no book build is needed; and the real outlines checked against the chapters' labels."""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import make_slides  # noqa: E402

# A 1 x 1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
URL = re.compile(r"https?://", re.I)


def _figure_cell(name: str) -> dict:
    return {
        "cell_type": "code",
        "metadata": {
            "mystnb": {
                "figure": {"name": name, "caption": r"A table of $d_{\text{model}} = 8$."},
                "image": {"alt": f"alt text of {name}"},
            }
        },
        "source": "plot()",
        "outputs": [
            {
                "output_type": "display_data",
                "data": {"image/png": PNG, "text/plain": "<Figure>"},
                "metadata": {"image/png": {"width": 320}},
            }
        ],
    }


def _glue_cell(name: str) -> dict:
    return {
        "cell_type": "code",
        "metadata": {},
        "source": f"glue('{name}', fig)",
        "outputs": [
            {
                "output_type": "display_data",
                "data": {"image/png": PNG},
                "metadata": {"scrapbook": {"name": name, "mime_prefix": ""}},
            }
        ],
    }


@pytest.fixture
def book(tmp_path: Path) -> dict[str, Path]:
    """A fake book: _toc.yml with two parts, one executed notebook, outlines, reveal.js."""
    executed = tmp_path / "executed"
    executed.mkdir()
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Fake chapter\n\nText."},
            _figure_cell("fig-one"),
            _glue_cell("glued-two"),
            {"cell_type": "code", "metadata": {}, "source": "1", "outputs": []},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (executed / "01_fake.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: intro\nparts:\n"
        "  - caption: First part\n    chapters:\n      - file: notebooks/01_fake\n"
        "  - caption: Second part\n    chapters:\n      - file: book/page\n",
        encoding="utf-8",
    )
    outlines = tmp_path / "outlines"
    outlines.mkdir()
    (outlines / "part-1.yml").write_text(
        "part: First part\nslides:\n"
        "  - title: With a `code` bullet\n    bullets: [one, '**two**']\n"
        "    figure: fig-one\n    notes: say this\n"
        "  - title: Glued\n    figure: glued-two\n",
        encoding="utf-8",
    )
    # Stand-in for reveal.js's dist/ (the real one is checked below when installed).
    reveal = tmp_path / "reveal"
    for rel in make_slides.REVEAL_FILES:
        (reveal / rel).parent.mkdir(parents=True, exist_ok=True)
        (reveal / rel).write_text(f"/* {rel} */\n", encoding="utf-8")
    return {
        "executed": executed,
        "toc": toc,
        "outlines": outlines,
        "reveal": reveal,
        "out": tmp_path / "out",
    }


def _build(book: dict[str, Path], **kw) -> list[Path]:
    return make_slides.build(
        book["executed"], book["out"], book["outlines"], book["reveal"], book["toc"], **kw
    )


def test_deck_has_every_figure_and_local_assets(book):
    (deck,) = _build(book)
    page = deck.read_text(encoding="utf-8")
    assert deck.name == "part-1.html"
    for label in ("fig-one", "glued-two"):
        assert (book["out"] / "figures" / f"{label}.png").read_bytes() == base64.b64decode(PNG)
        assert f'src="figures/{label}.png"' in page
    assert 'alt="alt text of fig-one"' in page
    assert "<code>code</code>" in page and "<strong>two</strong>" in page
    assert '<aside class="notes">say this</aside>' in page
    assert "Fake chapter" in page  # the part's chapter list on the title slide
    # No URL to any host, and every stylesheet / script / image is a file beside the deck.
    assert not URL.search(page)
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(refs) >= 7
    for ref in refs:
        assert (deck.parent / ref).is_file(), ref
    assert {r for r in refs if r.startswith("reveal.js/")} == {
        f"reveal.js/{f}" for f in make_slides.REVEAL_FILES
    }


def test_caption_markup_becomes_plain_text(book):
    (deck,) = _build(book)
    page = deck.read_text(encoding="utf-8")
    assert "A table of d_model = 8." in page
    assert "$" not in page and "\\text" not in page
    assert make_slides.plain(r"see {numref}`fig-x` and $\omega_i \times 2$") == (
        "see an earlier figure and ω_i × 2"
    )


def test_missing_figure_is_an_error_naming_it(book):
    outline = book["outlines"] / "part-1.yml"
    outline.write_text(
        outline.read_text(encoding="utf-8")
        + "  - title: Gone\n    figure: fig-renamed\n  - title: Also\n    figure: fig-typo\n",
        encoding="utf-8",
    )
    with pytest.raises(make_slides.SlideError, match="fig-renamed, fig-typo"):
        _build(book)
    assert (
        make_slides.main(
            [
                "--executed",
                str(book["executed"]),
                "--out",
                str(book["out"]),
                "--outlines",
                str(book["outlines"]),
                "--reveal",
                str(book["reveal"]),
            ]
        )
        == 1
    )


def test_outline_must_name_the_part_of_the_toc(book):
    outline = book["outlines"] / "part-1.yml"
    outline.write_text(
        outline.read_text(encoding="utf-8").replace("First part", "Second part"),
        encoding="utf-8",
    )
    with pytest.raises(make_slides.SlideError, match="'First part'"):
        _build(book)


def test_unknown_slide_key_and_missing_reveal_are_errors(book):
    outline = book["outlines"] / "part-1.yml"
    text = outline.read_text(encoding="utf-8")
    outline.write_text(text.replace("notes: say this", "note: say this"), encoding="utf-8")
    with pytest.raises(make_slides.SlideError, match="unknown keys"):
        _build(book)
    outline.write_text(text, encoding="utf-8")
    (book["reveal"] / "reveal.js").unlink()
    with pytest.raises(make_slides.SlideError, match="npm ci"):
        _build(book)


def test_duplicate_label_across_notebooks_is_an_error(book):
    src = book["executed"] / "01_fake.ipynb"
    (book["executed"] / "02_copy.ipynb").write_text(src.read_text(encoding="utf-8"))
    with pytest.raises(make_slides.SlideError, match="fig-one"):
        _build(book)


# --- The real outlines against the real chapters (source notebooks, no execution) ---


def _source_labels() -> set[str]:
    labels = set()
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            name = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
            if name:
                labels.add(name)
            source = "".join(cell["source"])
            labels.update(re.findall(r"""glue\(\s*["']([^"'{}]+)["']""", source))
            # Glue names built at run time (f-strings) are named where the page shows them.
            labels.update(re.findall(r"\{glue:figure\}\s+(\S+)", source))
    return labels


OUTLINES = sorted((ROOT / "slides").glob("part-*.yml"))


def test_every_part_of_the_book_has_an_outline():
    parts = make_slides.toc_parts()
    with_notebooks = [
        i for i, p in enumerate(parts, 1) if any(c.startswith("notebooks/") for c in p["chapters"])
    ]
    assert [int(p.stem.split("-")[1]) for p in OUTLINES] == with_notebooks


@pytest.mark.parametrize("path", OUTLINES, ids=lambda p: p.stem)
def test_outline_matches_the_book(path):
    """Part caption as in _toc.yml, and every figure label still exists in a chapter."""
    outline = make_slides.load_outline(path)
    number = int(path.stem.split("-")[1])
    assert outline["part"] == make_slides.toc_parts()[number - 1]["caption"]
    missing = set(make_slides.figure_labels(outline)) - _source_labels()
    assert not missing, f"{path.name}: no chapter labels a figure {sorted(missing)}"


def test_lockfile_pins_reveal_js():
    lock = json.loads((ROOT / "slides" / "package-lock.json").read_text(encoding="utf-8"))
    entry = lock["packages"]["node_modules/reveal.js"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"])
    assert entry["integrity"].startswith("sha512-")


@pytest.mark.skipif(not make_slides.REVEAL.is_dir(), reason="npm ci not run in slides/")
def test_installed_reveal_assets_load_nothing_remote():
    """The files copied beside the decks: no stylesheet import or font from a CDN."""
    for rel in make_slides.REVEAL_FILES:
        text = (make_slides.REVEAL / rel).read_text(encoding="utf-8")
        for bad in ("fonts.googleapis", "cdn.jsdelivr", "unpkg.com", "cdnjs"):
            assert bad not in text, (rel, bad)
        if rel.endswith(".css"):
            assert not re.search(r"(@import|url\()\s*['\"]?https?:", text), rel
