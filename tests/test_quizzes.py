"""The concept-question bank (book/quizzes/NN_*.yml): well formed, every computable
answer recomputed with the library, rendered offline in the book, exported to Moodle GIFT
and Canvas QTI, and the exports parse back to the same questions.

A numeric question carries ``compute``: code that sets ``value`` with ``posenc_lib``
(``pe``), ``torch`` and ``math``; the stored answer must match it within the stated
tolerance. A multiple-choice question may carry ``verify``: code whose asserts check
the statement of the right choice as written (and, where it is a number, the wrong ones).
"""

import math
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import torch

import posenc_lib as pe

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import quiz  # noqa: E402  (book/_ext/quiz.py: the data model and the HTML)
import quiz_export  # noqa: E402

BANKS = quiz.load_banks(ROOT / "book" / "quizzes")
QUESTIONS = [(bank, q) for bank in BANKS for q in bank["questions"]]
IDS = [q["id"] for _, q in QUESTIONS]


def _run(code: str) -> dict:
    scope = {"pe": pe, "torch": torch, "math": math}
    exec(code, scope)  # noqa: S102  (the bank's own checking code)
    return scope


def test_a_bank_for_every_chapter():
    assert [bank["chapter"] for bank in BANKS] == list(range(1, 11))
    for bank in BANKS:
        notebook = ROOT / "notebooks" / f"{bank['notebook']}.ipynb"
        assert notebook.is_file(), bank["notebook"]
        assert 4 <= len(bank["questions"]) <= 8, bank["notebook"]


def test_ids_are_unique():
    assert len(IDS) == len(set(IDS))


@pytest.mark.parametrize(("bank", "q"), QUESTIONS, ids=IDS)
def test_question_is_well_formed(bank, q):
    quiz.validate_question(q)  # raises with the reason
    assert q["prompt"].strip() and q["explanation"].strip()
    if q["kind"] == "choice":
        assert sum(bool(c.get("correct")) for c in q["choices"]) == 1
        assert all(c["feedback"].strip() for c in q["choices"])


NUMERIC = [(b, q) for b, q in QUESTIONS if q["kind"] == "numeric"]
VERIFIED = [(b, q) for b, q in QUESTIONS if "verify" in q]


@pytest.mark.parametrize(("bank", "q"), NUMERIC, ids=[q["id"] for _, q in NUMERIC])
def test_numeric_answer_is_recomputed(bank, q):
    value = _run(q["compute"])["value"]
    assert abs(float(value) - q["answer"]) <= q["tolerance"], (q["id"], value, q["answer"])
    # The tolerance accepts the answer and refuses the typical wrong ones it lists.
    for wrong in q.get("wrong_answers", []):
        assert abs(wrong["value"] - q["answer"]) > q["tolerance"], (q["id"], wrong)


@pytest.mark.parametrize(("bank", "q"), VERIFIED, ids=[q["id"] for _, q in VERIFIED])
def test_choice_is_verified_by_code(bank, q):
    _run(q["verify"])


def test_most_questions_are_checked_by_code():
    checked = sum("compute" in q or "verify" in q for _, q in QUESTIONS)
    assert checked >= 0.75 * len(QUESTIONS), f"{checked} of {len(QUESTIONS)}"


def test_html_is_self_contained_and_labelled():
    for bank in BANKS:
        html = quiz.render_bank(bank)
        assert "http://" not in html and "https://" not in html
        assert "<script" not in html  # behaviour lives in _static/quiz.js
        for q in bank["questions"]:
            qid = quiz.html_id(q["id"])
            assert f'id="{qid}"' in html
            assert f'aria-labelledby="{qid}-prompt"' in html
        # Every input has a label, and the answers work without JavaScript too.
        assert html.count("<input") == html.count("<label")
        assert html.count("<details") == len(bank["questions"])


def test_student_edition_html_holds_no_answer():
    for bank in BANKS:
        html = quiz.render_bank(bank, answers=False)
        for marker in ("data-correct", "data-answer", "data-feedback", "data-wrong", "<details"):
            assert marker not in html
        assert "Check answer" not in html
        for q in bank["questions"]:
            assert f'id="{quiz.html_id(q["id"])}-prompt"' in html  # the question stays
            assert quiz._inline(q["explanation"]) not in html
            for c in q.get("choices", []):
                assert quiz._inline(c["text"]) in html
                assert quiz._inline(c["feedback"]) not in html
        assert html.count("<input") == html.count("<label")


GIFT_QUESTION = re.compile(r"^::(?P<title>[^:]+)::(?P<body>.*?)\{(?P<answers>.*)\}\s*$", re.S)


def _parse_gift(text: str) -> list[dict]:
    """A small GIFT reader: title, prompt and answers of every question."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [ln for ln in block.splitlines() if not ln.startswith("//")]
        if not lines or lines[0].startswith("$CATEGORY"):
            continue
        m = GIFT_QUESTION.match("\n".join(lines))
        assert m, block
        answers = m["answers"].strip()
        if answers.startswith("#"):
            value, tol = answers[1:].split("####")[0].strip().split(":")
            out.append({"title": m["title"], "numeric": (float(value), float(tol))})
        else:
            parts = re.findall(r"(?<!\S)([=~])((?:\\.|[^=~\\])*)", answers)
            choices = [
                (sign == "=", re.split(r"(?<!\\)#", body, maxsplit=1)[0].strip())
                for sign, body in parts
            ]
            out.append({"title": m["title"], "choices": choices})
    return out


def _gift_unescape(text: str) -> str:
    return re.sub(r"\\([~=#{}:\\])", r"\1", text)


def test_gift_export_parses_back(tmp_path):
    paths = quiz_export.export(tmp_path)
    gifts = sorted(p for p in paths if p.suffix == ".txt")
    assert len(gifts) == len(BANKS)
    for bank, path in zip(BANKS, gifts, strict=True):
        parsed = _parse_gift(path.read_text(encoding="utf-8"))
        assert [p["title"] for p in parsed] == [q["id"] for q in bank["questions"]]
        for p, q in zip(parsed, bank["questions"], strict=True):
            if q["kind"] == "numeric":
                assert p["numeric"] == (q["answer"], q["tolerance"])
            else:
                want = [(bool(c.get("correct")), quiz.plain(c["text"])) for c in q["choices"]]
                got = [(ok, _gift_unescape(t)) for ok, t in p["choices"]]
                assert got == want


def test_qti_export_parses_back(tmp_path):
    paths = quiz_export.export(tmp_path)
    (package,) = [p for p in paths if p.suffix == ".zip"]
    ns = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
    with zipfile.ZipFile(package) as z:
        manifest = ET.fromstring(z.read("imsmanifest.xml"))
        hrefs = [f.get("href") for f in manifest.iter() if f.tag.endswith("file")]
        assert len(hrefs) == len(BANKS)
        for bank, href in zip(BANKS, sorted(hrefs), strict=True):
            root = ET.fromstring(z.read(href))
            items = root.findall(".//q:item", ns)
            assert [i.get("ident") for i in items] == [q["id"] for q in bank["questions"]]
            for item, q in zip(items, bank["questions"], strict=True):
                kind = item.find(".//q:qtimetadatafield[q:fieldlabel='question_type']", ns)
                kind = kind.find("q:fieldentry", ns).text
                if q["kind"] == "numeric":
                    assert kind == "numerical_question"
                    vargte = item.find(".//q:vargte", ns)
                    varlte = item.find(".//q:varlte", ns)
                    lo, hi = float(vargte.text), float(varlte.text)
                    assert lo <= q["answer"] <= hi
                    assert math.isclose(hi - lo, 2 * q["tolerance"], abs_tol=1e-9)
                else:
                    assert kind == "multiple_choice_question"
                    labels = item.findall(".//q:response_label", ns)
                    assert len(labels) == len(q["choices"])
                    right = item.find(".//q:respcondition/q:conditionvar/q:varequal", ns)
                    ok = [i for i, c in enumerate(q["choices"]) if c.get("correct")]
                    assert right.text == labels[ok[0]].get("ident")
