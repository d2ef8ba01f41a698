"""The ``{explorer}`` directive: an offline, interactive Vega-Lite chart in a page.

Registered by ``_config.yml`` (``sphinx.local_extensions``). Usage in MyST::

    :::{explorer} sinusoid
    :alt: Heatmap of the sinusoidal table and a line chart of the dot product ...

    Caption (MyST). Move the sliders to change the base and d_model.
    :::

The name picks a spec of ``explorer_specs.EXPLORERS`` (sinusoid, rope, alibi, scaling).
The spec is inlined in the page (a few KB) and drawn by Vega, Vega-Lite and vega-embed,
served by the site itself (``make web-assets`` copies them from npm into
``_static/explorers/lib``) and loaded only on pages that have an explorer. Its sliders
are Vega-Lite parameters: the browser computes the closed-form encodings, no kernel.
Next to the spec the page carries the numbers that ``posenc_lib`` gives at the sliders'
starting values (``reference_values``); ``make test-browser`` checks the chart against
them, moves a slider and checks that the chart changes.

In the PDF (and other non-HTML builders) only the caption is printed, with a note that
the explorer is on the website.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

sys.path.insert(0, str(Path(__file__).parent))
import explorer_specs  # noqa: E402

logger = logging.getLogger(__name__)

LIB = "explorers/lib"
SCRIPTS = [
    f"{LIB}/vega.min.js",
    f"{LIB}/vega-lite.min.js",
    f"{LIB}/vega-embed.min.js",
    "explorers.js",
]


class explorer_node(nodes.General, nodes.Element):  # noqa: N801 (docutils convention)
    pass


class ExplorerDirective(SphinxDirective):
    required_arguments = 1
    has_content = True
    option_spec = {"alt": directives.unchanged_required, "name": directives.unchanged}

    def run(self):
        name = self.arguments[0].strip()
        if name not in explorer_specs.EXPLORERS:
            raise self.error(
                f"explorer name must be one of {sorted(explorer_specs.EXPLORERS)}, got {name!r}"
            )
        alt = " ".join(self.options.get("alt", "").split())
        if not alt:
            raise self.error(
                f"explorer {name!r}: the :alt: option (a text alternative) is required"
            )
        node = explorer_node(explorer=name, alt=alt)
        node["ids"].append(
            self.options.get("name") or f"explorer-{name}-{self.env.new_serialno('explorer')}"
        )
        self.set_source_info(node)
        if self.content:
            self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


def _json_script(cls: str, data) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" class="{cls}">{text}</script>'


def visit_html(self, node: explorer_node) -> None:
    name, alt = node["explorer"], node["alt"]
    spec = explorer_specs.EXPLORERS[name]()
    spec["description"] = alt
    ident = node["ids"][0]
    self.body.append(
        f'<figure class="explorer" id="{ident}" aria-describedby="{ident}-alt">'
        f'<p class="explorer-alt" id="{ident}-alt">{html.escape(alt)}</p>'
        f'<div class="explorer-view" data-explorer="{name}"></div>'
        + _json_script("explorer-spec", spec)
        + _json_script("explorer-reference", explorer_specs.reference_values(name))
        + "<noscript><p>This interactive chart needs JavaScript.</p></noscript>"
        '<figcaption class="explorer-caption">'
    )


def depart_html(self, node: explorer_node) -> None:
    self.body.append("</figcaption></figure>\n")


def visit_latex(self, node: explorer_node) -> None:
    self.body.append(
        "\n\\par\\noindent\\emph{An interactive explorer on the book's "
        "website: " + self.encode(node["alt"]) + "}\\par\n"
    )


def visit_other(self, node: explorer_node) -> None:
    pass  # the caption's paragraphs are printed as they are


def depart_other(self, node: explorer_node) -> None:
    pass


def _page_assets(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if doctree is None or not any(True for _ in doctree.findall(explorer_node)):
        return
    for script in SCRIPTS:
        app.add_js_file(script, loading_method="defer")


def _check_lib(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    for static in app.config.html_static_path:
        if (Path(app.confdir, static) / LIB / "vega-embed.min.js").exists() or (
            Path(app.srcdir, static) / LIB / "vega-embed.min.js"
        ).exists():
            return
    logger.warning(
        "explorer: %s/vega-embed.min.js is not in html_static_path: run "
        "'make web-assets' (the explorers will not draw)",
        LIB,
    )


def setup(app: Sphinx) -> dict:
    app.add_node(
        explorer_node,
        html=(visit_html, depart_html),
        latex=(visit_latex, depart_other),
        text=(visit_other, depart_other),
        man=(visit_other, depart_other),
        texinfo=(visit_other, depart_other),
    )
    app.add_directive("explorer", ExplorerDirective)
    app.connect("builder-inited", _check_lib)
    app.connect("html-page-context", _page_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
