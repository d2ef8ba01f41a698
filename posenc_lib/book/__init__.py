"""Support code for the book's chapters, kept apart from the encodings a user imports.

- :mod:`~posenc_lib.book.plotting`: the figure style of every chapter.
- :mod:`~posenc_lib.book.data`: the synthetic tasks and the text of the labs.
- :mod:`~posenc_lib.book.experiments`: the training loop and the labs' runs.
- :mod:`~posenc_lib.book.exercises`: the checkers that grade the exercises.

Import what a chapter needs, e.g. ``from posenc_lib.book import plotting``.
"""

from . import data, exercises, experiments, plotting  # noqa: F401
