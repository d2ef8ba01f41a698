"""scripts/link_glossary.py: first prose use of each glossary term linked, nothing else;
and the glossary itself (its terms, citations and chapter links)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import link_glossary as lg  # noqa: E402

GLOSSARY = """# Glossary

```{glossary}
:sorted:

KV cache
  The keys and values kept during generation.

M-RoPE
  Multimodal RoPE.

NTK-aware scaling
NTK scaling
  A base change.

Positional encoding
  Anything that tells attention about order.

Relative position
  The offset $j - i$.

Relative position encoding
  A scheme that depends on $j - i$.

RoPE
  Rotary position embedding.

Base (of a sinusoidal or rotary encoding)
  The constant b.
```
"""


@pytest.fixture
def linker(tmp_path: Path) -> lg.Linker:
    path = tmp_path / "glossary.md"
    path.write_text(GLOSSARY, encoding="utf-8")
    return lg.Linker(lg.read_glossary(path))


def _md(text: str, **meta) -> dict:
    return {"cell_type": "markdown", "metadata": meta, "source": text.splitlines(True)}


def _code(text: str) -> dict:
    return {
        "cell_type": "code",
        "metadata": {},
        "source": text,
        "outputs": [],
        "execution_count": None,
    }


def _nb(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _text(nb: dict) -> str:
    return "\n----\n".join("".join(c["source"]) for c in nb["cells"])


def test_read_glossary_groups_aliases(tmp_path):
    path = tmp_path / "g.md"
    path.write_text(GLOSSARY, encoding="utf-8")
    entries = lg.read_glossary(path)
    assert [e.terms for e in entries][:3] == [
        ("KV cache",),
        ("M-RoPE",),
        ("NTK-aware scaling", "NTK scaling"),
    ]
    assert len(entries) == 8


def test_first_use_only_and_once_per_entry(linker):
    nb = _nb(
        _md("# Title\n\nA KV cache holds keys. The KV cache grows.\n"),
        _md("NTK scaling first, then NTK-aware scaling, then KV cache again.\n"),
    )
    assert linker.link_notebook(nb) == ["KV cache", "NTK scaling"]
    text = _text(nb)
    assert text.count("{term}") == 2
    assert "A {term}`KV cache` holds keys. The KV cache grows." in text
    assert "{term}`NTK scaling` first, then NTK-aware scaling" in text


def test_case_plural_and_longest_match(linker):
    nb = _nb(_md("Positional encodings and relative position encodings; rope is a string."))
    linker.link_notebook(nb)
    text = _text(nb)
    assert "{term}`Positional encodings <Positional encoding>`" in text
    # The longer term wins, and the shorter one is not linked inside it.
    assert "{term}`relative position encodings <Relative position encoding>`" in text
    assert "{term}`rope" not in text  # RoPE has inner capitals: case-sensitive
    nb = _nb(_md("Relative position\nencoding across a line break."))
    linker.link_notebook(nb)
    assert _text(nb).startswith("{term}`Relative position\nencoding`")


def test_hyphenated_terms_are_whole_words(linker):
    nb = _nb(_md("M-RoPE extends RoPE.\n"))
    assert linker.link_notebook(nb) == ["M-RoPE", "RoPE"]
    assert _text(nb) == "{term}`M-RoPE` extends {term}`RoPE`.\n"


@pytest.mark.parametrize(
    "protected",
    [
        "$\\text{KV cache}$",
        "$$\n\\text{KV cache}\n$$",
        "\\begin{align}\\text{KV cache}\\end{align}",
        "`the KV cache`",
        "``the KV cache``",
        "# The KV cache",
        "### KV cache and RoPE",
        "[the KV cache](https://example.org)",
        "![KV cache](img.png)",
        "[KV cache][ref]",
        "<span title='KV cache'>x</span>",
        "<!-- a KV cache\nnote -->",
        "{doc}`KV cache <05_rope>`",
        "{cite:t}`KV cache`",
        "```python\ncache = 'KV cache'\n```",
        "```{math}\n\\text{KV cache}\n```",
        "```{code-cell} python\n# KV cache\n```",
        "```{figure} a.png\n:alt: a KV cache\n:name: fig-kv\n```",
        "```{note}\n---\nclass: KV cache\n---\n```",
        "(kv-cache)=",
        "% a KV cache comment",
        "{{ KV cache }}",
    ],
)
def test_never_inside_non_prose(linker, protected):
    nb = _nb(_md(protected + "\n"))
    assert linker.link_notebook(nb) == []
    assert _text(nb) == protected + "\n"


def test_directive_body_is_prose_but_options_are_not(linker):
    text = "```{exercise}\n:label: ex-kv\n\nWhy does the KV cache grow?\n```\n"
    nb = _nb(_md(text))
    assert linker.link_notebook(nb) == ["KV cache"]
    assert _text(nb) == text.replace("the KV cache", "the {term}`KV cache`")
    # A code fence inside a prose directive stays code.
    text = "````{note}\n```python\nKV cache\n```\nThen RoPE.\n````\n"
    nb = _nb(_md(text))
    assert linker.link_notebook(nb) == ["RoPE"]


def test_prose_next_to_protected_text_is_linked(linker):
    nb = _nb(_md("With $x$ and `code`, the KV cache of {doc}`05_rope` holds keys."))
    assert linker.link_notebook(nb) == ["KV cache"]


def test_existing_links_count_and_code_cells_solutions_are_untouched(linker):
    nb = _nb(
        _md("See the {term}`cache <KV cache>`.\n"),
        _code("# KV cache and RoPE\nx = 1\n"),
        _md("```{solution-start} ex-a\n:class: dropdown\n```\nThe RoPE of the solution.\n"),
        _md("Still solution: RoPE.\n"),
        _md("```{solution-end}\n```\n"),
        _md("Hidden RoPE.\n", tags=["remove-cell"]),
        _md("The KV cache, RoPE and the base.\n"),
    )
    assert linker.link_notebook(nb) == ["RoPE"]
    assert nb["cells"][1]["source"] == "# KV cache and RoPE\nx = 1\n"
    assert "{term}" not in "".join(nb["cells"][2]["source"] + nb["cells"][3]["source"])
    # "base" is excluded (too common in other senses).
    assert "".join(nb["cells"][6]["source"]) == "The KV cache, {term}`RoPE` and the base.\n"


def test_cli_check_write_and_idempotence(tmp_path, capsys):
    glossary = tmp_path / "glossary.md"
    glossary.write_text(GLOSSARY, encoding="utf-8")
    path = tmp_path / "ch.ipynb"
    nb = _nb(_md("Le KV cache — 缓存 and RoPE.\n"), _code("1"))
    path.write_text(lg.dump(nb), encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    args = ["--glossary", str(glossary), str(path)]
    assert lg.main(["--check", *args]) == 1
    assert "KV cache, RoPE" in capsys.readouterr().out
    assert path.read_text(encoding="utf-8") == before  # --check writes nothing
    assert lg.main(args) == 0
    after = path.read_text(encoding="utf-8")
    assert after.endswith("}\n") and "缓存" in after and '\n "cells": [' in after
    assert json.loads(after)["cells"][0]["source"] == [
        "Le {term}`KV cache` — 缓存 and {term}`RoPE`.\n"
    ]
    assert lg.main(["--check", *args]) == 0  # nothing left to link
    assert lg.main(args) == 0 and path.read_text(encoding="utf-8") == after


# --- The book's glossary ---

REQUIRED = [
    "YaRN",
    "NTK-aware scaling",
    "Dynamic NTK",
    "Position interpolation",
    "Llama 3 scaling",
    "Half layout",
    "Interleaved layout",
    "RoPE layout",
    "KV cache",
    "Roofline model",
    "FlexAttention",
    "M-RoPE",
    "ALiBi",
    "T5 buckets",
    "Shaw clipping",
    "rel_shift",
    "Attention sink",
    "Length extrapolation",
    "Attention dilution",
    "Sliding window",
    "NoPE",
    "xPos",
]


def test_book_glossary_has_the_terms_and_they_are_unique():
    entries = lg.read_glossary()
    terms = [t.lower() for e in entries for t in e.terms]
    assert len(terms) == len(set(terms))
    for term in REQUIRED:
        assert term.lower() in terms, term
    assert len(entries) >= 40


def test_book_glossary_citations_and_chapter_links_exist():
    text = lg.GLOSSARY.read_text(encoding="utf-8")
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    cited = {
        k.strip() for group in re.findall(r"\{cite:[pt]\}`([^`]+)`", text) for k in group.split(",")
    }
    assert cited and cited <= keys, cited - keys
    body = text.split("```{glossary}", 1)[1]
    blocks = [b for b in re.split(r"\n\s*\n", body) if b.strip() and b[0].isalpha()]
    assert len(blocks) == len(lg.read_glossary())
    for block in blocks:  # every entry points to the chapter that teaches it
        assert "{doc}`../" in block, block.splitlines()[0]
    docs = re.findall(r"\{doc\}`\.\./([^`]+)`", text)
    for doc in docs:
        assert (ROOT / f"{doc}.ipynb").is_file() or (ROOT / f"{doc}.md").is_file(), doc
    # Every {term} inside the glossary names one of its own terms.
    terms = {t.lower() for e in lg.read_glossary() for t in e.terms}
    for role in re.findall(r"\{term\}`([^`]+)`", text):
        target = re.search(r"<([^>]+)>$", role)
        assert (target[1] if target else role).lower() in terms, role
