"""Checkers for the book's coding exercises, one module per part of the book.

Each checker runs a reader's function on several inputs and returns a
:class:`~posenc_lib.book.exercises.absolute.CheckResult` that says *what* is wrong (a wrong
shape, sine and cosine swapped, the wrong exponent, the wrong layout, ...), not just
``False``. Use them as ``from posenc_lib.book.exercises import absolute``, or ``exercises.absolute``.
"""

from . import absolute, long_context, relative, rope  # noqa: F401

__all__ = ["absolute", "long_context", "relative", "rope"]
