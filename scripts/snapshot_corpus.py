"""Write the book's text corpus as package data: the running Python's
``pydoc_data.topics``, joined and folded to ASCII exactly as
``posenc_lib.book.data`` describes, gzipped to posenc_lib/book/corpus/pydoc_topics.txt.gz.

The standard library's copy of this text changes between Python releases (3.11.7 gives
465,089 characters, 3.12.1 gives 492,274), so the labs read this snapshot instead, and every
Python reads the same characters. Run it only to replace the snapshot on purpose, then
update data.CORPUS_PYTHON and data.CORPUS_SHA256.
"""

from __future__ import annotations

import gzip
import hashlib
import platform
from pathlib import Path

from posenc_lib.book.data import _fold_to_ascii

OUT = Path(__file__).resolve().parent.parent / "posenc_lib" / "book" / "corpus"


def main() -> None:
    from pydoc_data.topics import topics

    text = _fold_to_ascii("\n\n".join(topics[key].strip("\n") for key in sorted(topics)))
    raw = text.encode("ascii")
    # mtime=0: the same text always gives the same bytes
    (OUT / "pydoc_topics.txt.gz").write_bytes(gzip.compress(raw, mtime=0))
    print(
        f"Python {platform.python_version()}: {len(text)} characters, "
        f"sha256 {hashlib.sha256(raw).hexdigest()}"
    )


if __name__ == "__main__":
    main()
