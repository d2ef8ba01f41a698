"""The chapters' printing helpers keep output inside the book's 88-column code column."""

from posenc_lib.book.display import WIDTH, python_block, show


def test_show_wraps_long_lines_and_keeps_short_ones(capsys):
    show("short line\n" + "word " * 40)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "short line"
    assert len(lines) > 2 and max(map(len, lines)) <= WIDTH


def test_python_block_is_a_fenced_python_block():
    block = python_block("x = 1")
    assert block.data == "```python\nx = 1\n```"
