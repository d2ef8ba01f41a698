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
  mode switch) are relabelled (axe rule label-content-name-mismatch, serious).
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx

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
    return _THEME_SWITCH_ICON.sub(r'\1 aria-hidden="true"', html)


def _page_context(app: Sphinx, pagename, templatename, context, doctree) -> None:
    _fix_scripts(app, context)
    if "body" in context:
        context["body"] = fix_body(context["body"])


def _build_finished(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        if any(part.startswith(("_", ".")) for part in page.relative_to(app.outdir).parts[:-1]):
            continue
        text = page.read_text(encoding="utf-8")
        fixed = fix_theme(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app: Sphinx) -> dict:
    # After sphinx-thebe and the theme have added their scripts.
    app.connect("html-page-context", _page_context, priority=900)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
