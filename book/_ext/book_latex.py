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
  fixed shares of the line instead, so long cells wrap.
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
    config["latex_elements"] = elements


_NEXT = re.compile(r"\\chapter\{|\\part\{|\\renewcommand\{\\indexname\}|\\printindex"
                   r"|\\end\{document\}|\\backmatter")


def _drop_pages(text: str) -> str:
    """Removes the chapters of NOT_IN_PDF from the written .tex."""
    for doc in NOT_IN_PDF:
        at = text.find(r"\label{\detokenize{" + doc + r"::doc}}")
        start = text.rfind(r"\chapter{", 0, at)
        if at < 0 or start < 0:
            continue
        end = _NEXT.search(text, at)
        text = text[:start] + text[end.start() if end else len(text):]
    return text


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


def _wrap_tables(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.name != "latex":
        return
    for table in doctree.findall(nodes.table):
        if "colwidths-given" in table["classes"]:
            continue
        for tgroup in table.findall(nodes.tgroup):
            specs = [c for c in tgroup.children if isinstance(c, nodes.colspec)]
            # Each column's share: its longest cell, between 6 and 60 characters.
            longest = [6] * len(specs)
            for row in tgroup.findall(nodes.row):
                for i, entry in enumerate(e for e in row.children if isinstance(e, nodes.entry)):
                    if i < len(longest):
                        longest[i] = max(longest[i], min(60, len(entry.astext())))
            for spec, width in zip(specs, longest, strict=True):
                spec["colwidth"] = width
        table["classes"] = [c for c in table["classes"] if c != "colwidths-auto"]
        table["classes"].append("colwidths-given")


def _build_finished(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.name != "latex":
        return
    outdir = Path(app.outdir)
    for tex in outdir.glob("*.tex"):
        text = tex.read_text(encoding="utf-8")
        fixed = _drop_pages(text)
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
