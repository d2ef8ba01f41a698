"""The PDF's table columns (book/_ext/book_latex.py): wide tables fit the line and no
column is narrower than its longest word (a word cannot wrap)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book" / "_ext"))
from book_latex import LINE_CHARS, column_widths  # noqa: E402


def test_short_tables_keep_their_natural_widths():
    assert column_widths([["id", "A1"], ["a short cell", "b"]]) == [6, 12]


def test_a_wide_table_fits_the_line_and_keeps_every_word_whole():
    long = "a cell of prose that is much longer than sixty characters and has to wrap"
    cells = [["A17", "B2"], ["myth", "art."], [long, long], [long], [long, "x" * 12]]
    widths = column_widths(cells)
    assert abs(sum(widths) - LINE_CHARS) <= len(widths)  # rounding
    for col, w in zip(cells, widths, strict=True):
        assert w >= max(len(word) for c in col for word in c.split()) + 3
    assert widths[0] < widths[2]


def test_the_contents_are_called_contents_not_the_first_part():
    from book_latex import _contents_name

    tex = "\\addto\\captionsenglish{\\renewcommand{\\contentsname}{Start here}}\n"
    assert _contents_name(tex) == (
        "\\addto\\captionsenglish{\\renewcommand{\\contentsname}{Contents}}\n"
    )
