"""Sphinx extension of the book's website: offline and accessible HTML.

Loaded by `_config.yml` (`sphinx.local_extensions`). It fixes, at build time, what the
theme and the notebook outputs would otherwise get wrong; `make test-browser` checks the
result in a real browser.

- Thebe (live code in the page) is off in this book, yet sphinx-thebe adds its config
  script (naming a CDN URL) on every page, sometimes twice, which is a JavaScript error
  ("Identifier 'THEBE_JS_URL' has already been declared"). Its scripts are dropped when
  `launch_buttons.thebe` is false; other duplicated scripts are dropped too.
- matplotlib's `Animation.to_jshtml()` links Font Awesome 4 from a CDN: the link is
  removed (the theme ships Font Awesome locally) and the frame slider gets an
  accessible name. The frame image's alt text is the chapter author's job (see the
  team's STATIC_INTERACTIVE recipe); the browser test fails without it.
- Citations: docutils gives each entry of a citation list the deprecated ARIA role
  `doc-biblioentry`, which axe reports as a critical violation inside `role="list"`;
  they become `listitem`.
- myst-nb's "Show code cell source" toggles (hide-input cells) carry the aria-label
  "Toggle hidden content", which hides their visible text: the label is dropped.
- Theme buttons whose aria-label hides their visible text (the search field, the colour
  mode switch) are relabelled (axe rule label-content-name-mismatch, serious); the
  sidebar's icon-only expand/collapse toggles get a name (axe summary-name, serious).

Page weight (budget checked by `make test-browser`):

- The theme's Font Awesome JavaScript (1.5 MB, 540 KB gzipped, on every page) only
  turns `<i class="fa-...">` into inline SVG; the theme's CSS draws the same icons with
  the Font Awesome webfonts. The script is dropped, and the webfonts (300 KB) are
  replaced by subsets with only the icons that the built pages and the theme's CSS use.
- MathJax (265 KB gzipped) is loaded only by pages that have math.

Chinese text: the site serves its own subset of Noto Sans SC (@fontsource/noto-sans-sc
from npm, installed by `make web-deps`) with exactly the CJK characters of the built
pages, so they never render as empty boxes on a machine without a CJK font
(`_static/cjk/cjk.css`, family "Book CJK"; book.css puts it in the theme's font stacks).
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

_FONTAWESOME_JS = re.compile(r'<script\b[^>]*src="[^"]*scripts/fontawesome\.js[^"]*"[^>]*>\s*</script>\s*')
# Math in a page body: MathJax needs to run there.
_HAS_MATH = re.compile(r'class="[^"]*\bmath\b|\\\(|\\\[|\$\$')

_FA4_CDN_LINK = re.compile(
    r'<link\b[^>]*href="https?://[^"]*font-awesome[^"]*"[^>]*>\s*', flags=re.IGNORECASE
)
_ANIM_SLIDER = re.compile(r'<input id="(_anim_slider[0-9a-f]+)" type="range"')
_TOGGLE_SUMMARY_LABEL = re.compile(r'<summary aria-label="Toggle hidden content">(?=\s*<p\b)')
_SEARCH_FIELD_LABEL = re.compile(
    r'(<button class="[^"]*search-button-field[^"]*"[^>]*?) aria-label="Search"'
)
_THEME_SWITCH_ICON = re.compile(
    r'(<i class="theme-switch [^"]*" data-mode="[a-z]+")\s+title="[^"]*"'
)


def _thebe_enabled(app: Sphinx) -> bool:
    options = app.config.html_theme_options or {}
    return bool((options.get("launch_buttons") or {}).get("thebe"))


def _fix_scripts(app: Sphinx, context: dict) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    kept, seen = [], set()
    drop_thebe = not _thebe_enabled(app)
    for script in scripts:
        filename = getattr(script, "filename", str(script)) or ""
        body = (getattr(script, "attributes", None) or {}).get("body", "")
        if drop_thebe and ("sphinx-thebe.js" in filename or "THEBE_JS_URL" in body):
            continue
        key = (filename, body)
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"] = kept
    if not _HAS_MATH.search(context.get("body") or ""):
        context["script_files"] = [
            sc for sc in kept
            if "mathjax" not in (getattr(sc, "filename", str(sc)) or "").lower()
            and "window.MathJax" not in (getattr(sc, "attributes", None) or {}).get("body", "")
        ]
    if drop_thebe and context.get("css_files"):
        context["css_files"] = [
            c for c in context["css_files"] if "sphinx-thebe" not in getattr(c, "filename", str(c))
        ]


def fix_body(html: str) -> str:
    """Fixes of a page's content (notebook outputs, citations)."""
    html = _FA4_CDN_LINK.sub("", html)
    html = _ANIM_SLIDER.sub(r'<input id="\1" type="range" aria-label="Animation frame"', html)
    html = _TOGGLE_SUMMARY_LABEL.sub("<summary>", html)
    return html.replace('role="doc-biblioentry"', 'role="listitem"')


def fix_theme(html: str) -> str:
    """Fixes of the theme's page chrome (applied to each written page)."""
    html = _SEARCH_FIELD_LABEL.sub(r"\1", html)
    # The sidebar's expand/collapse toggle of a page with sub-pages is an icon only
    # (axe summary-name, serious): it gets a name.
    html = html.replace(
        '<summary><span class="toctree-toggle" role="presentation">',
        '<summary aria-label="Show or hide the sub-pages">'
        '<span class="toctree-toggle" role="presentation">',
    )
    html = _FONTAWESOME_JS.sub("", html)
    return _THEME_SWITCH_ICON.sub(r'\1 aria-hidden="true"', html)


def _page_context(app: Sphinx, pagename, templatename, context, doctree) -> None:
    _fix_scripts(app, context)
    if "body" in context:
        context["body"] = fix_body(context["body"])


# ---------------------------------------------------------------- fonts
_FA_ICON_CLASS = re.compile(r"\bfa-[a-z0-9-]+")
_FA_TABLE_RULE = re.compile(r'((?:\.fa-[a-z0-9-]+:before,?)+)\{content:"\\([0-9a-f]+)"\}')
_CSS_ICON = re.compile(r'"\\(f[0-9a-f]{3})"')
_FA_FACE_SRC = re.compile(r"url\(\.\./vendor/fontawesome/webfonts/(fa-[a-z]+-[0-9]+)\.woff2\) "
                          r'format\("woff2"\),url\(\.\./vendor/fontawesome/webfonts/\1\.ttf\) '
                          r'format\("truetype"\)')
# Han, CJK symbols and punctuation, fullwidth forms, kana, Bopomofo, CJK compatibility.
_CJK = re.compile("[\u2e80-\u2fdf\u3000-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf"
                  "\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
CJK_FAMILY = "Book CJK"
_FONTSOURCE = "tests/browser/node_modules/@fontsource/noto-sans-sc"


def _subset(src: Path, codepoints: set[int], dest: Path, flavor: str | None = "woff") -> bool:
    """Writes the glyphs of ``codepoints`` that ``src`` has to ``dest`` (WOFF, zlib)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(src))
    have = set(font.getBestCmap())
    wanted = codepoints & have
    if not wanted:
        return False
    options = subset.Options()
    options.flavor = flavor
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    sub = subset.Subsetter(options)
    sub.populate(unicodes=sorted(wanted))
    sub.subset(font)
    dest.parent.mkdir(parents=True, exist_ok=True)
    font.flavor = flavor
    font.save(str(dest))
    return True


def _fontawesome_subset(outdir: Path, pages: dict[Path, str]) -> None:
    """Replaces the theme's Font Awesome webfonts by subsets of the icons in use."""
    styles = outdir / "_static" / "styles" / "pydata-sphinx-theme.css"
    webfonts = outdir / "_static" / "vendor" / "fontawesome" / "webfonts"
    if not styles.exists() or not webfonts.exists():
        return
    css = styles.read_text(encoding="utf-8")
    table = {}
    for m in _FA_TABLE_RULE.finditer(css):
        for name in re.findall(r"\.(fa-[a-z0-9-]+):before", m.group(1)):
            table[name] = int(m.group(2), 16)
    used = set()
    scripts = [p.read_text(encoding="utf-8", errors="replace")
               for p in (outdir / "_static").rglob("*.js") if "mathjax" not in p.parts
               and "explorers" not in p.parts]
    for text in [*pages.values(), *scripts]:
        used.update(table[n] for n in _FA_ICON_CLASS.findall(text) if n in table)
    # Icons of the theme's own rules (admonitions, external links, toggles...).
    rest = _FA_TABLE_RULE.sub("", css)
    for other in (outdir / "_static").rglob("*.css"):
        if other != styles and "mathjax" not in other.parts:
            rest += other.read_text(encoding="utf-8", errors="replace")
    used.update(int(c, 16) for c in _CSS_ICON.findall(rest))
    dest = outdir / "_static" / "fa-subset"
    written = {f.stem for f in webfonts.glob("*.ttf") if _subset(f, used, dest / f"{f.stem}.woff")}

    def src(m: re.Match) -> str:
        name = m.group(1)
        return f'url(../fa-subset/{name}.woff) format("woff")' if name in written else m.group(0)

    styles.write_text(_FA_FACE_SRC.sub(src, css), encoding="utf-8")


def _unicode_range(codepoints) -> str:
    return ",".join(f"U+{c:x}" for c in sorted(codepoints))


CJK_CHARS = _CJK


def noto_slices(srcdir: Path, codepoints: set[int]) -> list[tuple[Path, set[int]]]:
    """The @fontsource/noto-sans-sc files (WOFF) that hold ``codepoints``, with theirs."""
    # The book's source, or a copy of it inside the repository (the student edition
    # builds one in _build/student/src): the nearest node_modules up the tree.
    here = Path(srcdir).resolve()
    fontsource = next((d / _FONTSOURCE for d in (here, *here.parents)
                       if (d / _FONTSOURCE / "400.css").exists()), here / _FONTSOURCE)
    faces = fontsource / "400.css"
    if not faces.exists():
        logger.warning("book_website: %s is missing: run 'make web-deps'; %d CJK "
                       "characters have no font", faces, len(codepoints))
        return []
    remaining = set(codepoints)
    out = []
    face_re = re.compile(r"url\(\./files/([a-z0-9-]+)\.woff\) format\('woff'\);\s*"
                         r"unicode-range: ([^;]+);")
    for m in face_re.finditer(faces.read_text(encoding="utf-8")):
        covered = set()
        for part in m.group(2).split(","):
            lo, _, hi = part.strip()[2:].partition("-")
            covered.update(range(int(lo, 16), int(hi or lo, 16) + 1))
        here = remaining & covered
        if here:
            out.append((fontsource / "files" / f"{m.group(1)}.woff", here))
            remaining -= here
    return out


def merged_cjk_font(srcdir: Path, codepoints: set[int], dest: Path) -> set[int]:
    """One TrueType font with the glyphs of ``codepoints`` (for the PDF); returns those."""
    import tempfile

    from fontTools.merge import Merger
    from fontTools.ttLib import TTFont

    parts, covered = [], set()
    codepoints = set(codepoints) | {0x20}  # fontspec asks every font for a space
    with tempfile.TemporaryDirectory() as tmp:
        for i, (src, here) in enumerate(noto_slices(srcdir, codepoints)):
            part = Path(tmp) / f"part{i}.ttf"
            if _subset(src, here, part, flavor=None):
                parts.append(str(part))
                covered |= here & set(TTFont(str(part)).getBestCmap())
        if not parts:
            return set()
        font = Merger().merge(parts) if len(parts) > 1 else TTFont(parts[0])
        for name_id in (1, 4, 6):  # family, full and PostScript names
            font["name"].setName("BookCJK", name_id, 3, 1, 0x409)
        font.save(str(dest))
    return covered


def _cjk_subset(app: Sphinx, pages: dict[Path, str]) -> None:
    """_static/cjk/cjk.css: Noto Sans SC subsets with the CJK characters of the pages."""
    dest = Path(app.outdir) / "_static" / "cjk"
    chars = set()
    for text in pages.values():
        chars.update(_CJK.findall(text))
    chars.discard("\u3000")  # an ideographic space needs no glyph of ours
    rules = []
    remaining = {ord(c) for c in chars}
    for src, here in noto_slices(Path(app.srcdir), remaining) if chars else []:
        name = src.stem.replace("noto-sans-sc", "noto-sans-sc-subset")
        if _subset(src, here, dest / f"{name}.woff"):
            remaining -= here
            rules.append(
                f'@font-face{{font-family:"{CJK_FAMILY}";font-style:normal;'
                f'font-weight:400;font-display:swap;src:url({name}.woff) '
                f'format("woff");unicode-range:{_unicode_range(here)}}}')
    if remaining:
        logger.warning("book_website: no glyph in Noto Sans SC for %s",
                       "".join(chr(c) for c in sorted(remaining)))
    dest.mkdir(parents=True, exist_ok=True)
    header = (f"/* Generated by scripts/book_website.py: Noto Sans SC (SIL OFL 1.1, from "
              f"@fontsource/noto-sans-sc) cut to the {len(chars)} CJK characters of the "
              f"site. */\n")
    (dest / "cjk.css").write_text(header + "\n".join(rules) + "\n", encoding="utf-8")


def _build_finished(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    pages = {}
    for page in outdir.rglob("*.html"):
        if any(part.startswith(("_", ".")) for part in page.relative_to(outdir).parts[:-1]):
            continue
        text = page.read_text(encoding="utf-8")
        fixed = fix_theme(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")
        pages[page] = fixed
    _fontawesome_subset(outdir, pages)
    _cjk_subset(app, pages)


def _theme_mode(app: Sphinx, config) -> None:
    # The theme's default colour mode is empty, which its script reports as a console
    # error on a reader's first visit ("Got invalid theme mode"); "auto" follows the
    # reader's system setting, which is what the empty value falls back to anyway.
    # (pydata-sphinx-theme reads it from html_context, not from the theme options.)
    config.html_context.setdefault("default_mode", "auto")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _theme_mode)
    # After sphinx-thebe and the theme have added their scripts.
    app.connect("html-page-context", _page_context, priority=900)
    app.connect("build-finished", _build_finished)
    app.add_css_file("cjk/cjk.css")
    app.add_js_file("book.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
