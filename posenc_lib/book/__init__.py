"""Support code for the book's chapters, kept apart from the encodings a user imports.

- :mod:`~posenc_lib.book.plotting`: the figure style of every chapter.
- :mod:`~posenc_lib.book.display`: printing wrapped to the code column, library source.
- :mod:`~posenc_lib.book.data`: the synthetic tasks and the text of the labs.
- :mod:`~posenc_lib.book.training`: the one training loop and the storage of results.
- :mod:`~posenc_lib.book.learned_lab`: chapter 3's controlled experiment.
- :mod:`~posenc_lib.book.lab_lm`, :mod:`~posenc_lib.book.lab_copy`,
  :mod:`~posenc_lib.book.lab_retrieval`, :mod:`~posenc_lib.book.lab_extension`: the
  labs of chapters 7 and 8 (:mod:`~posenc_lib.book.experiments` gathers them).
- :mod:`~posenc_lib.book.family`: score curves of the wider family (chapter 6).
- :mod:`~posenc_lib.book.exercises`: the checkers that grade the exercises.
- ``results/``: the stored full runs and benchmark files the chapters read.

Import what a chapter needs, e.g. ``from posenc_lib.book import plotting``.
"""

from . import data, display, exercises, experiments, plotting  # noqa: F401
