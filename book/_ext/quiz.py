"""Concept quizzes in the book, offline: the ``{quiz}`` directive and the question bank.

The bank is data: one YAML file per chapter in ``book/quizzes/NN_<chapter>.yml``::

    chapter: 2
    title: The sinusoidal encoding
    notebook: 02_sinusoidal
    questions:
      - id: sin-not-periodic           # unique in the whole bank
        kind: choice                   # one right choice, feedback on every choice
        prompt: Is the sinusoidal position vector a periodic function of the position?
        choices:
          - text: No ...
            correct: true
            feedback: ...
          - text: Yes ...
            feedback: ...
        explanation: ...
        verify: |                      # optional: asserts that check the claim by code
          ...
      - id: sin-entry
        kind: numeric
        prompt: ...
        answer: 0.448
        tolerance: 0.001
        compute: |                     # code that sets `value` (tests/test_quizzes.py)
          value = ...
        explanation: ...

Text fields are plain text; ```code``` in backticks becomes ``<code>``. In a page::

    ```{quiz} 02_sinusoidal
    ```

renders every question of that file as an accessible form (``fieldset``/``legend``,
labelled inputs, a polite live region for the verdict) with the answer and explanation
in a ``<details>`` element, so it works without JavaScript; ``_static/quiz.js`` (written
by this extension, no outside request) checks answers in the page. The same data is
exported to Moodle GIFT and Canvas QTI by ``scripts/quiz_export.py``.

In the student edition (``hide_solutions: true``, ``make student-edition``) the quizzes
keep their questions and choices but carry no answer, feedback or explanation, in the
HTML as on screen; the Sphinx option ``quiz_hide_answers`` (True/False) overrides that.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import yaml

KINDS = ("choice", "numeric")
_CODE = re.compile(r"`([^`]+)`")


# ------------------------------------------------------------------------ the data


def load_bank(path: Path) -> dict:
    """One chapter's bank, validated."""
    bank = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for key in ("chapter", "title", "notebook", "questions"):
        if key not in bank:
            raise ValueError(f"{path}: missing key {key!r}")
    for q in bank["questions"]:
        try:
            validate_question(q)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return bank


def load_banks(folder: Path) -> list[dict]:
    """Every ``NN_*.yml`` bank of ``folder``, in chapter order."""
    return [load_bank(p) for p in sorted(Path(folder).glob("[0-9][0-9]_*.yml"))]


def validate_question(q: dict) -> None:
    """Raise ``ValueError`` naming what is missing or wrong in question ``q``."""
    qid = q.get("id", "?")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", str(qid)):
        raise ValueError(f"question id {qid!r}: use lowercase letters, digits and '-'")
    if q.get("kind") not in KINDS:
        raise ValueError(f"{qid}: kind must be one of {KINDS}, got {q.get('kind')!r}")
    for key in ("prompt", "explanation"):
        if not str(q.get(key, "")).strip():
            raise ValueError(f"{qid}: {key!r} is required")
    if q["kind"] == "choice":
        choices = q.get("choices") or []
        if len(choices) < 2:
            raise ValueError(f"{qid}: a choice question needs at least 2 choices")
        if sum(bool(c.get("correct")) for c in choices) != 1:
            raise ValueError(f"{qid}: exactly one choice must have correct: true")
        for c in choices:
            if not str(c.get("text", "")).strip() or not str(c.get("feedback", "")).strip():
                raise ValueError(f"{qid}: every choice needs 'text' and 'feedback'")
    else:
        for key in ("answer", "tolerance", "compute"):
            if key not in q:
                raise ValueError(f"{qid}: a numeric question needs {key!r}")
        if not q["tolerance"] >= 0:
            raise ValueError(f"{qid}: tolerance must be >= 0, got {q['tolerance']}")
        for wrong in q.get("wrong_answers", []):
            if "value" not in wrong or not str(wrong.get("why", "")).strip():
                raise ValueError(f"{qid}: every wrong answer needs 'value' and 'why'")


def plain(text: str) -> str:
    """Text without its backticks (for the LMS exports)."""
    return _CODE.sub(r"\1", " ".join(str(text).split()))


def html_id(qid: str) -> str:
    return f"quiz-{qid}"


def _inline(text: str) -> str:
    """Escaped HTML of a text field, `code` in <code>."""
    return _CODE.sub(r"<code>\1</code>", html.escape(" ".join(str(text).split())))


def _number(value: float) -> str:
    return f"{value:.10g}"


# ------------------------------------------------------------------------ the HTML


def render_question(q: dict, number: int, *, answers: bool = True) -> str:
    """One question as a self-contained, accessible form.

    With ``answers=False`` (the student edition) the page holds no trace of the answer:
    no right choice, no feedback, no number, no explanation, no check button.
    """
    qid = html_id(q["id"])
    out = [
        f'<fieldset class="pe-quiz-q" id="{qid}" data-kind="{q["kind"]}" '
        f'aria-labelledby="{qid}-prompt"'
    ]
    if q["kind"] == "numeric" and answers:
        out[0] += (
            f' data-answer="{_number(q["answer"])}" data-tolerance="{_number(q["tolerance"])}"'
        )
        wrong = [{"value": w["value"], "why": plain(w["why"])} for w in q.get("wrong_answers", [])]
        out[0] += f' data-wrong="{html.escape(json.dumps(wrong, ensure_ascii=False))}"'
    out[0] += ">"
    out.append(
        f'<legend id="{qid}-prompt"><span class="pe-quiz-n">{number}.</span> '
        f"{_inline(q['prompt'])}</legend>"
    )
    if q["kind"] == "choice":
        for i, c in enumerate(q["choices"]):
            cid = f"{qid}-{i}"
            right = ' data-correct="1"' if c.get("correct") else ""
            if not answers:
                out.append(
                    f'<div class="pe-quiz-choice"><input type="radio" name="{qid}" id="{cid}" '
                    f'value="{i}"><label for="{cid}">{_inline(c["text"])}</label></div>'
                )
                continue
            out.append(
                f'<div class="pe-quiz-choice"><input type="radio" name="{qid}" id="{cid}" '
                f'value="{i}"{right} data-feedback="{html.escape(plain(c["feedback"]))}">'
                f'<label for="{cid}">{_inline(c["text"])}</label></div>'
            )
        right = next(c for c in q["choices"] if c.get("correct"))
        answer = _inline(right["text"])
        details = "".join(
            f"<li><strong>{_inline(c['text'])}</strong> {_inline(c['feedback'])}</li>"
            for c in q["choices"]
        )
        details = f"<ul>{details}</ul>"
    else:
        out.append(
            f'<div class="pe-quiz-numeric"><label for="{qid}-input">Your answer</label> '
            f'<input type="text" inputmode="decimal" autocomplete="off" id="{qid}-input" '
            f'name="{qid}"></div>'
        )
        answer = f"{_number(q['answer'])} (accepted within ± {_number(q['tolerance'])})"
        details = ""
    if not answers:
        out.append("</fieldset>")
        return "\n".join(out)
    out.append(
        f'<div class="pe-quiz-actions"><button type="button" class="pe-quiz-check" '
        f'data-target="{qid}">Check answer</button></div>'
    )
    out.append(
        f'<p class="pe-quiz-verdict" id="{qid}-verdict" role="status" aria-live="polite"></p>'
    )
    out.append(
        f"<details><summary>Answer and explanation</summary>"
        f"<p><strong>Answer:</strong> {answer}</p>{details}"
        f"<p>{_inline(q['explanation'])}</p></details>"
    )
    out.append("</fieldset>")
    return "\n".join(out)


def render_bank(bank: dict, *, answers: bool = True) -> str:
    """Every question of a chapter's bank, in a labelled region (``answers``: see
    :func:`render_question`)."""
    label = html.escape(f"Quiz on chapter {bank['chapter']}: {bank['title']}")
    questions = bank["questions"]
    body = "\n".join(render_question(q, i + 1, answers=answers) for i, q in enumerate(questions))
    note = (
        ""
        if answers
        else '<p class="pe-quiz-note">Answers and explanations are left out of this '
        "edition: your teacher has them.</p>\n"
    )
    return f'<div class="pe-quiz" role="region" aria-label="{label}">\n{note}{body}\n</div>'


QUIZ_JS = r"""
// Offline quiz checking for the {quiz} directive (book/_ext/quiz.py). No request leaves
// the page; without JavaScript the <details> element still shows answer and explanation.
(function () {
  "use strict";
  function verdict(box, ok, text) {
    var out = box.querySelector(".pe-quiz-verdict");
    out.textContent = (ok ? "Correct. " : "Not quite. ") + text;
    out.className = "pe-quiz-verdict " + (ok ? "pe-quiz-right" : "pe-quiz-wrong");
  }
  function check(box) {
    if (box.dataset.kind === "choice") {
      var picked = box.querySelector("input[type=radio]:checked");
      if (!picked) {
        box.querySelector(".pe-quiz-verdict").textContent = "Choose an answer first.";
        return;
      }
      var text = (picked.dataset.feedback || "").replace(/^Right[.:]\s*/, "");
      verdict(box, picked.dataset.correct === "1", text);
    } else {
      var field = box.querySelector("input");
      var value = parseFloat(String(field.value).replace(",", ".").trim());
      if (isNaN(value)) {
        box.querySelector(".pe-quiz-verdict").textContent = "Enter a number first.";
        return;
      }
      var answer = parseFloat(box.dataset.answer);
      var tolerance = parseFloat(box.dataset.tolerance);
      var close = function (x) { return Math.abs(value - x) <= tolerance * (1 + 1e-9); };
      if (close(answer)) { verdict(box, true, ""); return; }
      // A typical wrong answer gets its own diagnosis.
      var wrong = JSON.parse(box.dataset.wrong || "[]").filter(function (w) {
        return close(w.value);
      });
      verdict(box, false, (wrong.length ? "That number comes from a typical mistake: " +
        wrong[0].why + ". " : "") + "Open the explanation below, or try again.");
    }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".pe-quiz-check") : null;
    if (button) check(document.getElementById(button.dataset.target));
  });
})();
"""

QUIZ_CSS = """
.pe-quiz-q { border: 1px solid #8a8a8a; border-radius: 6px; padding: 0.8em 1em;
  margin: 1.2em 0; }
.pe-quiz-q legend { font-size: 1.05rem; font-weight: 600; line-height: 1.45;
  padding: 0 0.3em; float: none; width: auto; margin-bottom: 0.4em; }
.pe-quiz-choice { display: flex; gap: 0.5em; align-items: baseline; margin: 0.35em 0; }
.pe-quiz-choice input { flex: none; }
.pe-quiz-numeric input { width: 10em; margin-left: 0.5em; }
.pe-quiz-check { margin: 0.6em 0 0.2em; padding: 0.25em 0.9em; border-radius: 4px;
  border: 1px solid #1a4f8a; background: #1a4f8a; color: #fff; cursor: pointer; }
.pe-quiz-check:focus-visible { outline: 3px solid #e69f00; outline-offset: 2px; }
.pe-quiz-verdict { min-height: 1.2em; margin: 0.3em 0; }
.pe-quiz-right { color: #0a6640; font-weight: 600; }
.pe-quiz-wrong { color: #a3240f; font-weight: 600; }
.pe-quiz-q details { margin-top: 0.4em; }
"""


# ------------------------------------------------------------------------ Sphinx


def setup(app):
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class QuizDirective(SphinxDirective):
        """``{quiz} NN_chapter``: the bank ``NN_chapter.yml`` next to the page."""

        required_arguments = 1
        has_content = False

        def run(self):
            name = self.arguments[0]
            rel, path = self.env.relfn2path(name if name.endswith(".yml") else name + ".yml")
            self.env.note_dependency(rel)
            try:
                bank = load_bank(Path(path))
            except (OSError, ValueError) as err:
                raise self.error(f"quiz {name}: {err}") from None
            self.env.metadata[self.env.docname]["pe_quiz"] = True
            hide = self.config.quiz_hide_answers
            if hide is None:  # follow the student edition's switch (sphinx-exercise)
                hide = bool(getattr(self.config, "hide_solutions", False))
            html_node = nodes.raw("", render_bank(bank, answers=not hide), format="html")
            latex = nodes.paragraph(
                text=f"The quiz on chapter {bank['chapter']} ({len(bank['questions'])} "
                "questions) is interactive: see the web edition."
            )
            only = nodes.container(classes=["pe-quiz-print"])
            only += latex
            return [html_node] if self.env.app.builder.format == "html" else [only]

    def add_assets(app, pagename, templatename, context, doctree):
        if app.env.metadata.get(pagename, {}).get("pe_quiz"):
            app.add_js_file("quiz.js", defer="defer")
            app.add_css_file("quiz.css")

    def write_assets(app, exception):
        if exception is None and app.builder.format == "html":
            static = Path(app.outdir) / "_static"
            static.mkdir(parents=True, exist_ok=True)
            (static / "quiz.js").write_text(QUIZ_JS.lstrip(), encoding="utf-8")
            (static / "quiz.css").write_text(QUIZ_CSS.lstrip(), encoding="utf-8")

    # None: hide the answers exactly when solutions are hidden (the student edition).
    app.add_config_value("quiz_hide_answers", None, "env")
    app.add_directive("quiz", QuizDirective)
    app.connect("html-page-context", add_assets)
    app.connect("build-finished", write_assets)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":  # print the bank as JSON (a quick look at the data)
    print(json.dumps(load_banks(Path(__file__).resolve().parent.parent / "quizzes"), indent=1))
