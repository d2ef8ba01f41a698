"""Link the first prose use of each glossary term in a chapter to its glossary entry.

The terms are those of the ``{glossary}`` directive of ``book/glossary.md``; an entry
with several term lines (``KV cache`` / ``Relative shift`` + ``rel_shift``) is linked
once per chapter, at the first use of any of its terms. The link is the Sphinx role
``{term}`KV cache``` (or ``{term}`KV caches <KV cache>``` when the words differ from
the term), so the words on the page do not change.

Only plain prose is touched: never math (``$..$``, ``$$..$$``, ``\\begin..\\end``), code
fences or the bodies of directives that are not prose (``{math}``, ``{code-cell}``,
...), inline code, headings, the option lines of directives, links, images, HTML,
existing roles (a chapter that already links an entry is left alone for that entry),
cells removed from the page, or solutions (the student edition drops those cells).

Usage::

    python scripts/link_glossary.py [--check] [--glossary book/glossary.md] NOTEBOOK...

``--check`` changes nothing and exits 1 when a notebook has an unlinked first use.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "book" / "glossary.md"
# Terms whose words are too common in other senses to be linked automatically.
NO_AUTOLINK = {"base", "extrapolation", "pi"}
# Directives whose body is not MyST prose.
RAW_DIRECTIVES = {
    "math", "code", "code-block", "code-cell", "sourcecode", "literalinclude", "raw",
    "eval-rst", "glossary", "bibliography", "toctree", "mermaid", "csv-table",
    "list-table", "explorer", "tableofcontents",
}
REMOVED_TAGS = {"remove-cell", "remove-input"}
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(\{([^}]*)\})?.*$")
# Inline constructs that are never prose, in the order they are masked.
INLINE_PROTECTED = [
    re.compile(r"\$\$.+?\$\$", re.S),  # display math
    re.compile(r"\\begin\{([a-z*]+)\}.*?\\end\{\1\}", re.S),  # LaTeX environments
    re.compile(r"\{[\w:.+-]+\}(`+).*?\1", re.S),  # roles, content included
    re.compile(r"(`+).+?\1", re.S),  # inline code
    re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$(?!\d)"),  # inline math
    re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)"),  # links and images, text included
    re.compile(r"!?\[[^\]\n]*\]\[[^\]\n]*\]"),  # reference-style links
    re.compile(r"<!--.*?-->", re.S),  # HTML comments
    re.compile(r"<[^>\n]+>"),  # autolinks and HTML tags
    re.compile(r"\{\{.*?\}\}", re.S),  # substitutions
]
ROLE_TERM = re.compile(r"\{term\}`([^`]*?)`")


@dataclass(frozen=True)
class Entry:
    """One glossary entry: its terms (the first is the entry's name)."""

    terms: tuple[str, ...]


def read_glossary(path: Path = GLOSSARY) -> list[Entry]:
    """The entries of the ``{glossary}`` directive of a MyST page.

    Raises:
        ValueError: the page has no glossary directive.
    """
    text = path.read_text(encoding="utf-8")
    match = re.search(r"^(`{3,})\{glossary\}[^\n]*\n(.*?)^\1\s*$", text, re.M | re.S)
    if not match:
        raise ValueError(f"{path}: no {{glossary}} directive")
    entries, terms = [], []
    for line in match[2].splitlines():
        if not line.strip() or line.startswith(":"):
            if terms:
                entries.append(Entry(tuple(terms)))
                terms = []
            continue
        if line[0].isspace():  # definition text
            if terms:
                entries.append(Entry(tuple(terms)))
                terms = []
        else:
            terms.append(line.strip())
    if terms:
        entries.append(Entry(tuple(terms)))
    return entries


def surface(term: str) -> str:
    """The words a chapter writes for a term: the term without a trailing (qualifier)."""
    return re.sub(r"\s*\([^)]*\)$", "", term).strip()


def _pattern(words: str) -> str:
    """Regex for a term's words: first letter of either case unless the term has capitals
    inside (RoPE, KV cache, ALiBi), a plural ``s`` allowed, whole words only."""
    body = re.escape(words).replace(r"\ ", r"\s+")
    inner_caps = any(c.isupper() for c in words[1:])
    if not inner_caps and words[0].isalpha():
        body = f"[{words[0].upper()}{words[0].lower()}]" + re.escape(words[1:]).replace(
            r"\ ", r"\s+"
        )
    return rf"(?<![\w\-{{`]){body}s?(?![\w\-])"


class Linker:
    """Links glossary terms in the markdown cells of notebooks."""

    def __init__(self, entries: list[Entry]):
        self.entries = entries
        self.entry_of: dict[str, Entry] = {}
        forms: list[tuple[str, str]] = []  # (words, term)
        for entry in entries:
            for term in entry.terms:
                self.entry_of[term.lower()] = entry
                words = surface(term)
                if words and words.lower() not in NO_AUTOLINK:
                    forms.append((words, term))
        forms.sort(key=lambda f: -len(f[0]))  # longest first: "relative position encoding"
        self.term_of_group = [term for _, term in forms]
        self.regex = re.compile("|".join(f"({_pattern(w)})" for w, _ in forms))

    # -- masking ----------------------------------------------------------------------
    @staticmethod
    def protected(text: str) -> list[bool]:
        """Per character: True where the text is not plain prose."""
        mask = [False] * len(text)

        def cover(start: int, end: int) -> None:
            for i in range(start, end):
                mask[i] = True

        # Line structure: fences, directive options, headings, labels, comments.
        pos, stack = 0, []  # open fences: (marker, raw body?, "options" | "yaml" | "body")
        for line in text.splitlines(keepends=True):
            start, end = pos, pos + len(line)
            pos = end
            stripped = line.strip()
            fence = FENCE.match(line.rstrip("\n"))
            if stack:
                marker, raw, state = stack[-1]
                if stripped.startswith(marker[0] * 3) and stripped.rstrip(marker[0]) == "" \
                        and len(stripped) >= len(marker):
                    stack.pop()
                    cover(start, end)
                    continue
                if raw:
                    cover(start, end)
                    continue
                if state == "yaml":  # a ---/--- block of options
                    cover(start, end)
                    if stripped == "---":
                        stack[-1] = (marker, raw, "body")
                    continue
                if state == "options":
                    if stripped == "---":
                        stack[-1] = (marker, raw, "yaml")
                        cover(start, end)
                        continue
                    if re.match(r"\s*:[\w-]+:", line):
                        cover(start, end)
                        continue
                    stack[-1] = (marker, raw, "body")
            if fence:
                name = (fence[4] or "").strip()
                plain_code = fence[3] is None and not fence[2].startswith(":")
                if plain_code and fence[2].startswith(("`", "~")):
                    raw = True
                else:
                    raw = name in RAW_DIRECTIVES or name.startswith("code")
                stack.append((fence[2], raw, "options"))
                cover(start, end)
                continue
            if re.match(r"\s{0,3}#{1,6}(\s|$)", line) or re.match(r"\s*\([\w:.-]+\)=\s*$", line) \
                    or re.match(r"\s*%", line) or re.match(r"\s*\+{3}", line):
                cover(start, end)
        # Inline constructs, looked for in each stretch of prose between protected lines
        # only (a backtick of a fence must not pair with one in the prose).
        segments, start = [], None
        for i, masked in enumerate([*mask, True]):
            if not masked and start is None:
                start = i
            elif masked and start is not None:
                segments.append((start, i))
                start = None
        for seg_start, seg_end in segments:
            segment = text[seg_start:seg_end]
            for regex in INLINE_PROTECTED:
                for m in regex.finditer(segment):
                    cover(seg_start + m.start(), seg_start + m.end())
        return mask

    # -- linking ----------------------------------------------------------------------
    def existing(self, text: str) -> set[int]:
        """ids of the entries already linked by a ``{term}`` role in ``text``."""
        found = set()
        for m in ROLE_TERM.finditer(text):
            target = re.search(r"<([^>]*)>\s*$", m[1])
            name = (target[1] if target else m[1]).strip().lower()
            if name in self.entry_of:
                found.add(id(self.entry_of[name]))
        return found

    def link_text(self, text: str, done: set[int]) -> tuple[str, list[str]]:
        """``text`` with the first use of each entry not in ``done`` linked (``done`` is
        updated); returns the new text and the terms linked."""
        mask = self.protected(text)
        out, last, linked = [], 0, []
        for m in self.regex.finditer(text):
            if any(mask[m.start():m.end()]):
                continue
            term = self.term_of_group[m.lastindex - 1]
            entry = self.entry_of[term.lower()]
            if id(entry) in done:
                continue
            done.add(id(entry))
            words = m[0]
            # Sphinx normalises whitespace and case of a term's target, so the words
            # alone are enough when they only differ in those.
            same = " ".join(words.split()).lower() == term.lower()
            role = (f"{{term}}`{words}`" if same
                    else f"{{term}}`{words} <{term}>`")
            out.append(text[last:m.start()])
            out.append(role)
            last = m.end()
            linked.append(term)
        out.append(text[last:])
        return "".join(out), linked

    def link_notebook(self, nb: dict) -> list[str]:
        """Link terms in the prose cells of ``nb`` in place; returns the terms linked."""
        cells = nb["cells"]
        prose = [c for c in cells if c["cell_type"] == "markdown"]
        done: set[int] = set()
        for cell in prose:
            done |= self.existing("".join(cell["source"]))
        in_solution, linked = False, []
        for cell in cells:
            if cell["cell_type"] != "markdown":
                continue
            text = "".join(cell["source"])
            if re.search(r"^`{3,}\{solution-start\}", text, re.M):
                in_solution = True
            if in_solution:
                if re.search(r"^`{3,}\{solution-end\}", text, re.M):
                    in_solution = False
                continue
            if REMOVED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                continue
            new, terms = self.link_text(text, done)
            if terms:
                cell["source"] = new.splitlines(keepends=True)
                linked += terms
        return linked


def dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook has an unlinked term")
    parser.add_argument("--glossary", type=Path, default=GLOSSARY)
    args = parser.parse_args(argv)
    linker = Linker(read_glossary(args.glossary))
    status = 0
    for path in args.notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        terms = linker.link_notebook(nb)
        if not terms:
            continue
        if args.check:
            print(f"{path}: {len(terms)} term(s) not linked: {', '.join(terms)}")
            status = 1
        else:
            path.write_text(dump(nb), encoding="utf-8")
            print(f"{path}: linked {len(terms)} term(s): {', '.join(terms)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
