"""The PDF as a book (``make pdf``): parts, chapters, CJK text, no status page.

Registered by ``_config.yml`` (``sphinx.local_extensions``); it acts only on the LaTeX
builder.

- Parts and chapters: ``latex.use_jupyterbook_latex: true`` makes the TOC's part
  captions ``\\part``s, each file a ``\\chapter`` and the landing page front matter
  (sphinx-jupyterbook-latex). Its document class and preamble load TeX packages the
  book does not use (tikz, pgfplots, bbm: texlive-fonts-extra, 500 MB), so this
  extension puts back Sphinx's own ``manual`` class and drops that preamble.
- Headings: chapters are numbered; their sections already carry the chapter's own
  numbers ("1. The formula"), so LaTeX does not number sections again.
- CJK text (the errata, the glossary): every CJK character of the book switches to
  ``bookcjk.ttf``, a subset of Noto Sans SC (@fontsource/noto-sans-sc from npm, as on
  the website) with exactly the characters of ``book.tex``, made when the LaTeX files
  are written (XeTeX character classes; no xeCJK, no CJK TeX packages).
- Pages that are not part of the book (the build's execution status, the interactive
  explorers) are left out.
- Tables: Markdown tables are "auto width", which LaTeX sets in columns that never wrap
  (the errata's five-column table ran 25 cm off the page); in the PDF their columns get
  fixed shares of the line instead (:func:`column_widths`), so long cells wrap and no
  column is narrower than its longest word.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Documents of the website that the PDF leaves out.
NOT_IN_PDF = ("book/status", "book/explorers")

_JB_PREAMBLE = re.compile(
    r"\s*% Start of preamble defined in sphinx-jupyterbook-latex %.*?"
    r"% End of preamble defined in sphinx-jupyterbook-latex %\s*",
    flags=re.DOTALL,
)

PREAMBLE = r"""
% --- book_latex.py ---
% Chapters are numbered; sections carry the chapter's own numbers already.
\setcounter{secnumdepth}{0}
\setcounter{tocdepth}{1}
% CJK characters in the book's CJK font (bookcjk.sty is written with the .tex file).
\IfFileExists{bookcjk.sty}{\usepackage{bookcjk}}{}
% Notebook cells (sphinx-jupyterbook-latex wraps inputs and outputs in these; its class,
% which defines them, is not used): Sphinx's own code boxes, outputs indented.
\newenvironment{sphinxVerbatimInput}{}{}
\newenvironment{sphinxVerbatimOutput}{}{}
% Long words and URLs may break rather than run into the margin.
\setlength{\emergencystretch}{3em}
"""

#: Admonition types that Sphinx dispatches through ``sphinxadmonition``.
ADMONITIONS = ("note", "hint", "tip", "important", "warning", "caution", "attention",
               "danger", "error")  # fmt: skip

# Admonitions (exercises, solutions, notes...) sit between two rules, not in a frame:
# inside a frame Sphinx sets each code block as one box, which cannot break across
# pages, and long solutions ran into the footer. Between rules a code block keeps its own
# frame and breaks like any other (Sphinx's own pre-7.4 style, sphinxlightbox).
PREAMBLE += "".join(
    f"\\renewenvironment{{sphinx{kind}}}[1]"
    "{\\begin{sphinxlightbox}\\sphinxstrong{#1}\\par\\nobreak}{\\end{sphinxlightbox}}\n"
    for kind in ADMONITIONS
)


def _config_inited(app: Sphinx, config: Config) -> None:
    if "sphinx_jupyterbook_latex" not in config.extensions:
        return
    config["latex_theme"] = "manual"
    elements = dict(config["latex_elements"] or {})
    elements["preamble"] = _JB_PREAMBLE.sub("\n", elements.get("preamble", "")) + PREAMBLE
    # Sphinx's default for xelatex (FreeSerif, FreeSans, FreeMono: fonts-freefont-otf).
    elements.setdefault("sphinxsetup", "verbatimwrapslines=true, verbatimforcewraps=true")
    # Figures stay where they are (float package, [H]): a solution's figure sits inside
    # its admonition box, where a floating figure is a LaTeX error.
    elements.setdefault("figure_align", "H")
    # The index's two narrow columns hold long dotted API names that cannot be justified
    # (Sphinx's documented remedy).
    elements.setdefault("printindex", r"\footnotesize\raggedright\printindex")
    config["latex_elements"] = elements


_NEXT = re.compile(
    r"\\chapter\{|\\part\{|\\renewcommand\{\\indexname\}|\\printindex"
    r"|\\end\{document\}|\\backmatter"
)


def _unlink(text: str, doc: str) -> str:
    """Links to a page left out of the PDF: a list item that is only the link goes, any
    other link becomes its text (no dangling reference)."""
    link = r"{\hyperref[\detokenize{" + doc + ":"
    item = re.compile(
        r"\\item \{\} *\n\\sphinxAtStartPar\n\{\\hyperref\[\\detokenize\{"
        + re.escape(doc)
        + r"::doc\}\]\{\\sphinxcrossref\{[^{}]*\}\}\}\n+"
    )
    text = item.sub("", text)
    while (start := text.find(link)) >= 0:
        body = text.index("]{", start) + 1  # the link text's group
        depth, end = 0, body
        for end in range(body, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        # {\hyperref[...]{TEXT}} -> {TEXT}
        text = text[:start] + "{" + text[body : end + 1] + "}" + text[end + 2 :]
    return text


def _drop_pages(text: str) -> str:
    """Removes the chapters of NOT_IN_PDF from the written .tex, and links to them."""
    for doc in NOT_IN_PDF:
        text = _unlink(text, doc)
        at = text.find(r"\label{\detokenize{" + doc + r"::doc}}")
        start = text.rfind(r"\chapter{", 0, at)
        if at < 0 or start < 0:
            continue
        end = _NEXT.search(text, at)
        text = text[:start] + text[end.start() if end else len(text) :]
    return text


#: The landing page opens the PDF as front matter, under this unnumbered heading.
FRONT_MATTER_TITLE = "About this book"


def _front_matter(text: str) -> str:
    """Gives the landing page (text between the contents and the first part) a heading of
    its own, in the contents and in the running heads, which would otherwise still say
    "Contents"."""
    anchor = "\\sphinxtableofcontents\n\\pagestyle{normal}\n"
    title = FRONT_MATTER_TITLE
    heading = (
        f"\\chapter*{{{title}}}\\markboth{{{title}}}{{{title}}}"
        f"\\addcontentsline{{toc}}{{chapter}}{{{title}}}\n"
    )
    if anchor not in text or heading in text:
        return text
    return text.replace(anchor, anchor + heading, 1)


_CONTENTS_NAME = re.compile(r"(\\renewcommand\{\\contentsname\}\{)[^{}]*(\})")


def _contents_name(text: str) -> str:
    """Sphinx names the table of contents after the root page's first toctree caption
    (here the first part, "Start here"); a book's contents are called Contents."""
    return _CONTENTS_NAME.sub(lambda m: m.group(1) + "Contents" + m.group(2), text)


def _cjk_package(outdir: Path, srcdir: Path, chars: set[str]) -> None:
    """bookcjk.ttf (the characters' glyphs) and bookcjk.sty (the character classes)."""
    sys.path.insert(0, str(srcdir / "scripts"))
    from book_website import merged_cjk_font  # noqa: PLC0415 (the website's font code)

    font = outdir / "bookcjk.ttf"
    covered = merged_cjk_font(srcdir, {ord(c) for c in chars}, font)
    lines = [
        r"\ProvidesPackage{bookcjk}",
        r"\RequirePackage{fontspec}",
        r"\newfontfamily\bookcjkfont{bookcjk.ttf}[Path=./]",
        r"\XeTeXinterchartokenstate=1",
        r"\newXeTeXintercharclass\BookCJKclass",
    ]
    lines += [rf'\XeTeXcharclass"{c:04X}=\BookCJKclass' for c in sorted(covered)]
    lines += [
        r"\XeTeXinterchartoks 0 \BookCJKclass = {\begingroup\bookcjkfont}",
        r"\XeTeXinterchartoks 4095 \BookCJKclass = {\begingroup\bookcjkfont}",
        r"\XeTeXinterchartoks \BookCJKclass 0 = {\endgroup}",
        r"\XeTeXinterchartoks \BookCJKclass 4095 = {\endgroup}",
        # Lines may break between two CJK characters.
        r"\XeTeXinterchartoks \BookCJKclass \BookCJKclass = {\hskip0pt plus 0.1pt\relax}",
    ]
    (outdir / "bookcjk.sty").write_text("\n".join(lines) + "\n", encoding="utf-8")
    missing = {c for c in chars if ord(c) not in covered}
    if missing:
        logger.warning("book_latex: no CJK glyph for %s", "".join(sorted(missing)))


#: Characters of body text on one line of the PDF (10 pt FreeSerif, Sphinx's "manual"
#: class on letter paper): the column shares below are in these units.
LINE_CHARS = 80


def _floors(cells: list[list[str]]) -> list[int]:
    """Each column's longest word plus a margin: the least width it can wrap to."""
    return [max([len(w) for c in col for w in c.split()] + [3]) + 3 for col in cells]


def column_widths(cells: list[list[str]], line_chars: int = LINE_CHARS) -> list[int]:
    """Shares of the line for the columns of a table, given each column's cell texts.

    A column wants its longest cell (at most 60 characters, then it wraps) but gets at
    least its longest word plus a margin, since a word cannot wrap and would run into the
    next column. Columns wider than their longest word give back room, in proportion,
    until the table fits ``line_chars``.
    """
    floor = _floors(cells)
    want = [
        max(f, min(60, max((len(c) for c in col), default=0)))
        for f, col in zip(floor, cells, strict=True)
    ]
    extra = sum(want) - sum(floor)
    room = line_chars - sum(floor)
    if sum(want) <= line_chars or extra <= 0:
        return want
    if room <= 0:
        return floor
    return [f + round((w - f) * room / extra) for f, w in zip(floor, want, strict=True)]


#: Tables whose words alone are wider than a line are set in \footnotesize (8 pt), which
#: fits this many more characters per line.
SMALL_FONT_GAIN = 1.25


def _wrap_tables(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.name != "latex":
        return
    for table in doctree.findall(nodes.table):
        if "colwidths-given" in table["classes"]:
            continue
        for tgroup in table.findall(nodes.tgroup):
            specs = [c for c in tgroup.children if isinstance(c, nodes.colspec)]
            cells = [[] for _ in specs]
            for row in tgroup.findall(nodes.row):
                for i, entry in enumerate(e for e in row.children if isinstance(e, nodes.entry)):
                    if i < len(cells):
                        cells[i].append(entry.astext())
            small = sum(_floors(cells)) > LINE_CHARS
            line = int(LINE_CHARS * SMALL_FONT_GAIN) if small else LINE_CHARS
            for spec, width in zip(specs, column_widths(cells, line), strict=True):
                spec["colwidth"] = width
            if small and table.parent is not None:
                at = table.parent.index(table)
                table.parent.insert(at + 1, nodes.raw("", "\\endgroup\n", format="latex"))
                table.parent.insert(
                    at, nodes.raw("", "\\begingroup\\footnotesize\n", format="latex")
                )
        table["classes"] = [c for c in table["classes"] if c != "colwidths-auto"]
        table["classes"].append("colwidths-given")


def _build_finished(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.name != "latex":
        return
    outdir = Path(app.outdir)
    for tex in outdir.glob("*.tex"):
        text = tex.read_text(encoding="utf-8")
        fixed = _contents_name(_front_matter(_drop_pages(text)))
        if fixed != text:
            tex.write_text(fixed, encoding="utf-8")
        sys.path.insert(0, str(Path(app.srcdir) / "scripts"))
        from book_website import CJK_CHARS  # noqa: PLC0415

        _cjk_package(outdir, Path(app.srcdir), set(CJK_CHARS.findall(fixed)))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("doctree-resolved", _wrap_tables)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
