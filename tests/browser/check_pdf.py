"""Checks the built PDF (`make pdf`) is a book: `python tests/browser/check_pdf.py [_build/latex]`.

Fails (exit 1, one line per problem) when:
- the table of contents (book.toc, written by LaTeX with the PDF) does not have the parts
  of _toc.yml, in order, each with as many chapters as the TOC lists for it (less the
  pages left out of the PDF: book/_ext/book_latex.py NOT_IN_PDF), or has the status page;
- xelatex reported a missing glyph ("Missing character"), i.e. text in a missing font;
- the CJK font subset is not embedded in the PDF (pdffonts) although the book has CJK text;
- a line or a table runs more than OVERFULL_PT into the margin (Overfull \\hbox): a
  fraction of a point is invisible, anything more is a visible overflow;
- a box runs more than OVERFULL_VBOX_PT past the bottom of its page (Overfull \\vbox);
- a cross-reference is undefined (a link to a page that is not in the PDF, a label
  that does not exist);
- the landing page is not front matter under its own heading (FRONT_MATTER_TITLE), or the
  contents are titled anything but "Contents";
- the PDF is missing or has fewer than MIN_PAGES pages.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from book_latex import FRONT_MATTER_TITLE, NOT_IN_PDF  # noqa: E402

OVERFULL_PT = 1.0
#: A code block that framed.sty splits across pages may end a few points low (up to 3.2 pt
#: in this book, invisible above the footer); a box that cannot split (code inside a
#: framed solution, before book_latex.py set solutions between rules) ran 34 to 91 pt.
OVERFULL_VBOX_PT = 4.0
MIN_PAGES = 50


def _overfull(log: str, box: str, way: str) -> list[float]:
    """The sizes, in pt, of LaTeX's "Overfull \\<box> (<x>pt too <way>)" warnings."""
    return [float(x) for x in re.findall(rf"Overfull \\{box} \((\d+\.?\d*)pt too {way}\)", log)]


def main(latex_dir: Path) -> list[str]:
    problems = []
    pdf, toc, log = (latex_dir / f"book.{ext}" for ext in ("pdf", "toc", "log"))
    for f in (pdf, toc, log):
        if not f.exists():
            return [f"{f} is missing: run 'make pdf'"]

    # Parts and chapters, in the order of _toc.yml.
    site = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    want = [
        (p["caption"], [c["file"] for c in p["chapters"] if c["file"] not in NOT_IN_PDF])
        for p in site["parts"]
    ]
    entries = re.findall(
        r"\\contentsline\s*\{(part|chapter)\}\{(.*?)\}\{[^{}]*\}\{[^{}]*\}%?\n",
        toc.read_text(encoding="utf-8"),
    )
    got, chapters = [], []
    for kind, title in entries:
        if kind == "part":
            got.append([re.sub(r"^[IVXLC]+\\hspace\s*\{1em\}", "", title), 0])
        elif "\\numberline" not in title:
            continue  # back matter: the indexes
        elif got:
            got[-1][1] += 1
            chapters.append(title)
        else:
            problems.append(f"chapter before the first part: {title}")
    got_parts = [t for t, _ in got]
    want_parts = [t for t, _ in want]
    if got_parts != want_parts:
        problems.append(f"parts {got_parts} differ from _toc.yml {want_parts}")
    else:
        for (title, n), (_, files) in zip(got, want, strict=True):
            if n != len(files):
                problems.append(f"part {title!r}: {n} chapters, _toc.yml lists {len(files)}")
    if any("Execution status" in c for c in chapters):
        problems.append("the execution status page is in the PDF")
    front = re.search(r"\\contentsline\s*\{(part|chapter)\}\{(.*?)\}", toc.read_text("utf-8"))
    if not front or front.group(2) != FRONT_MATTER_TITLE:
        problems.append(f"the contents do not open with {FRONT_MATTER_TITLE!r}")

    text = log.read_text(encoding="utf-8", errors="replace")
    missing = sorted(set(re.findall(r"Missing character: There is no (\S+)", text)))
    if missing:
        problems.append(
            f"{len(missing)} missing glyph(s) (text in a missing font): {''.join(missing)[:80]}"
        )
    overfull = _overfull(text, "hbox", "wide")
    wide = [x for x in overfull if x > OVERFULL_PT]
    if wide:
        problems.append(
            f"{len(wide)} line(s) or table(s) run more than {OVERFULL_PT} pt into "
            f"the margin (widest {max(wide):.0f} pt)"
        )

    undefined = sorted(
        set(re.findall(r"(?:Hyper r|R)eference `([^']*)'[^`]{0,120}?undefined", text))
    )
    if undefined:
        problems.append(f"{len(undefined)} undefined reference(s): {', '.join(undefined[:5])}")

    tex = (latex_dir / "book.tex").read_text(encoding="utf-8")
    names = re.findall(r"\\renewcommand\{\\contentsname\}\{([^{}]*)\}", tex)
    if any(n != "Contents" for n in names):
        problems.append(f"the table of contents is titled {names}, not 'Contents'")
    has_cjk = re.search(r"[\u3400-\u4dbf\u4e00-\u9fff]", tex) is not None
    try:
        fonts = subprocess.run(
            ["pdffonts", str(pdf)], capture_output=True, text=True, check=True
        ).stdout
        info = subprocess.run(
            ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return [*problems, f"pdffonts/pdfinfo failed (apt-get install poppler-utils): {e}"]
    if has_cjk and "BookCJK" not in fonts:
        problems.append("the book has CJK text but the PDF embeds no CJK font (BookCJK)")
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    if pages < MIN_PAGES:
        problems.append(f"only {pages} pages")
    tall = _overfull(text, "vbox", "high")
    low = [x for x in tall if x > OVERFULL_VBOX_PT]
    if low:
        problems.append(
            f"{len(low)} box(es) run more than {OVERFULL_VBOX_PT} pt past the bottom of "
            f"the page, towards the footer (widest {max(low):.0f} pt)"
        )
    print(
        f"PDF: {pages} pages, {len(got_parts)} parts, {len(chapters)} chapters, "
        f"{len(overfull)} overfull lines (widest {max(overfull, default=0):.1f} pt), "
        f"{len(tall)} boxes low (lowest {max(tall, default=0):.1f} pt), "
        f"CJK font {'embedded' if 'BookCJK' in fonts else 'absent'}"
    )
    return problems


if __name__ == "__main__":
    found = main(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/latex"))
    for p in found:
        print(f"FAIL {p}")
    print(f"{0 if found else 1} passed, {1 if found else 0} failed")
    sys.exit(1 if found else 0)
