"""Data for the book's experiments: an English text that ships with Python, a character
tokenizer, language-modelling batches, and an algorithmic task where position matters
exactly.

The text corpus is the reference documentation that CPython ships in its standard library
as ``pydoc_data.topics`` (the text behind ``help("for")``, ``help("with")``...): about
460 000 characters of English prose and grammar snippets, distributed with every Python
under the Python Software Foundation License. Nothing is downloaded. The exact text
depends on the Python version (it is regenerated for each release), so experiments record
``platform.python_version()`` next to their results.

Everything here is deterministic given a seed: batches come from an explicit
``torch.Generator``, never from the global random state.
"""

from __future__ import annotations

import gzip
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import torch

from .._validation import check_int, check_tensor

__all__ = [
    "CORPUS_SOURCE",
    "CORPUS_PYTHON",
    "CORPUS_SHA256",
    "load_corpus",
    "CharTokenizer",
    "split_tokens",
    "lm_batch",
    "lm_eval_windows",
    "unigram_nll",
    "delayed_copy_batch",
    "repeated_block_batch",
]

#: Where the text corpus comes from, and its licence (quoted by the chapters).
CORPUS_SOURCE = (
    "CPython standard library, module pydoc_data.topics (the documentation shown by help()), "
    "as shipped with Python 3.11.7, stored in this package; "
    "Python Software Foundation License"
)
#: The Python release whose ``pydoc_data.topics`` the stored snapshot was taken from. The
#: standard library's copy changes between releases (3.12.1's has 6 % more characters), so
#: the labs read the snapshot: every Python gets the same characters.
CORPUS_PYTHON = "3.11.7"
#: sha256 of the snapshot's ASCII text (``scripts/snapshot_corpus.py`` writes both).
CORPUS_SHA256 = "b986bb8f612fb1b2f47c3da9eef2f5b23f5987340bde954253e0be941fa11973"

# Typographic characters mapped to ASCII before tokenising, so the vocabulary stays small.
_ASCII_FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\t": "    ",
}  # fmt: skip


def _fold_to_ascii(text: str) -> str:
    for src, dst in _ASCII_FOLD.items():
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text)
    # Combining accents disappear; any other non-ASCII character becomes "?".
    out = []
    for ch in text:
        if ord(ch) < 128:
            out.append(ch)
        elif not unicodedata.combining(ch):
            out.append("?")
    return "".join(out)


def load_corpus(name: str = "pydoc", *, max_chars: int | None = None) -> str:
    """Return the book's English text corpus as one ASCII string.

    Args:
        name: only ``"pydoc"`` (CPython's ``pydoc_data.topics``, see :data:`CORPUS_SOURCE`):
            the snapshot stored in the package (:data:`CORPUS_PYTHON`), not the running
            Python's copy, which differs between releases.
        max_chars: keep only the first ``max_chars`` characters (``None``: all of it).

    Returns:
        The topics joined in sorted order of their names, separated by blank lines,
        with typographic quotes and dashes folded to ASCII.
    """
    if name != "pydoc":
        raise ValueError(f"name must be one of ('pydoc',), got {name!r}")
    if max_chars is not None:
        check_int("max_chars", max_chars, minimum=1)
    snapshot = resources.files("posenc_lib.book") / "corpus" / "pydoc_topics.txt.gz"
    text = gzip.decompress(snapshot.read_bytes()).decode("ascii")
    return text if max_chars is None else text[:max_chars]


@dataclass(frozen=True)
class CharTokenizer:
    """A character-level tokenizer: one token id per distinct character.

    Build it with ``CharTokenizer.from_text``; ids follow the sorted order of the characters, so the
    same text always gives the same vocabulary. Characters unseen at build time raise.
    """

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty str")
        return cls(tuple(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Return the ids of ``text`` as a 1-D int64 tensor."""
        index = {c: i for i, c in enumerate(self.chars)}
        try:
            ids = [index[c] for c in text]
        except KeyError as err:
            raise ValueError(f"text contains a character outside the vocabulary: {err}") from None
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Return the text of a 1-D sequence of ids."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"ids must lie in [0, {self.vocab_size}), got {i}")
        return "".join(self.chars[i] for i in ids)


def split_tokens(tokens: torch.Tensor, *, val_fraction: float = 0.1):
    """Split a 1-D token tensor into a contiguous (train, validation) pair.

    The validation part is the last ``val_fraction`` of the text: the two never overlap.
    """
    check_tensor("tokens", tokens, ndim=1)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    cut = int(round(tokens.numel() * (1.0 - val_fraction)))
    return tokens[:cut], tokens[cut:]


def lm_batch(tokens: torch.Tensor, *, batch_size: int, seq_len: int, generator: torch.Generator):
    """Sample ``batch_size`` random windows for next-character prediction.

    Returns:
        ``(inputs, targets)``, both ``(batch_size, seq_len)`` int64, with
        ``targets[:, t] = inputs[:, t + 1]`` inside the text.
    """
    check_tensor("tokens", tokens, ndim=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    if tokens.numel() < seq_len + 1:
        raise ValueError(
            f"tokens has {tokens.numel()} ids, need at least seq_len + 1 = {seq_len + 1}"
        )
    starts = torch.randint(0, tokens.numel() - seq_len, (batch_size,), generator=generator)
    idx = starts[:, None] + torch.arange(seq_len + 1)
    windows = tokens[idx]
    return windows[:, :-1], windows[:, 1:]


def lm_eval_windows(tokens: torch.Tensor, *, seq_len: int, max_windows: int | None = None):
    """Cut the text into consecutive, non-overlapping evaluation windows of ``seq_len``.

    Returns ``(inputs, targets)`` of shape ``(n, seq_len)``; ``n`` is the number of whole
    windows (at most ``max_windows``). Raises if not even one window fits.
    """
    check_tensor("tokens", tokens, ndim=1)
    check_int("seq_len", seq_len, minimum=1)
    n = (tokens.numel() - 1) // seq_len
    if max_windows is not None:
        n = min(n, check_int("max_windows", max_windows, minimum=1))
    if n < 1:
        raise ValueError(f"tokens has {tokens.numel()} ids, too few for one window of {seq_len}")
    idx = torch.arange(n)[:, None] * seq_len + torch.arange(seq_len + 1)
    windows = tokens[idx]
    return windows[:, :-1], windows[:, 1:]


def unigram_nll(train_tokens: torch.Tensor, eval_tokens: torch.Tensor, *, vocab_size: int) -> float:
    """Mean negative log-likelihood (nats/char) of ``eval_tokens`` under the unigram
    distribution of ``train_tokens`` (add-one smoothing): the no-context baseline.

    ``exp`` of it is the baseline perplexity a useful language model must beat.
    """
    check_int("vocab_size", vocab_size, minimum=1)
    counts = torch.bincount(train_tokens, minlength=vocab_size).double() + 1.0
    logp = torch.log(counts / counts.sum())
    return float(-logp[eval_tokens].mean())


def delayed_copy_batch(
    *, batch_size: int, seq_len: int, vocab_size: int, delay: int, generator: torch.Generator
):
    """The *delayed copy* task: output, at every position, the token seen ``delay`` steps
    earlier.

    Inputs are uniform random symbols ``x_0 ... x_{n-1}``; the target at position ``t`` is
    ``y_t = x_{t - delay}`` for ``t >= delay``. The rule depends only on an exact relative
    offset: a model must locate the token exactly ``delay`` positions back, at every
    length. Positions ``t < delay`` have no answer and are masked out.

    Returns:
        ``(inputs, targets, mask)``: ``(batch_size, seq_len)`` int64, int64 and bool.
    """
    check_int("batch_size", batch_size, minimum=1)
    check_int("vocab_size", vocab_size, minimum=2)
    check_int("delay", delay, minimum=1)
    check_int("seq_len", seq_len, minimum=delay + 1)
    inputs = torch.randint(0, vocab_size, (batch_size, seq_len), generator=generator)
    targets = torch.zeros_like(inputs)
    targets[:, delay:] = inputs[:, :-delay]
    mask = torch.zeros_like(inputs, dtype=torch.bool)
    mask[:, delay:] = True
    return inputs, targets, mask


def repeated_block_batch(
    *,
    batch_size: int,
    seq_len: int,
    fillers: int,
    keys: int,
    block: int,
    generator: torch.Generator,
    distance: int | None = None,
):
    """The *repeated block* task: find an earlier copy of a block and read on from it.

    Vocabulary: filler symbols ``0 .. fillers - 1``, a marker ``fillers`` and key symbols
    ``fillers + 1 .. fillers + keys``. Each sequence is random fillers with two copies of
    ``marker k_1 ... k_block`` (the keys drawn without replacement, fresh per sequence).
    The targets are the keys of the second copy: at its marker the model must output
    ``k_1``, at ``k_j`` it must output ``k_{j+1}``. Only the first copy holds the answer,
    and inside the key alphabet each symbol has one successor, so the task is unambiguous
    at any length: it measures whether the model finds a match ``distance`` positions back.

    Args:
        distance: offset between the two markers; ``None`` draws it per sequence
            uniformly from all that fit (training). With a ``distance`` the second copy
            ends at the last position, so the query always sits at the end of the input.

    Returns:
        ``(inputs, targets, mask)``, ``(batch_size, seq_len)`` int64, int64 and bool;
        ``mask`` marks the ``block`` target positions.
    """
    check_int("batch_size", batch_size, minimum=1)
    check_int("fillers", fillers, minimum=1)
    check_int("keys", keys, minimum=2)
    check_int("block", block, minimum=1)
    if block > keys:
        raise ValueError(f"block must be <= keys={keys}, got {block}")
    span = block + 1  # marker + keys
    check_int("seq_len", seq_len, minimum=2 * span)
    if distance is not None:
        check_int("distance", distance, minimum=span)
        if distance > seq_len - span:
            raise ValueError(
                f"distance must be <= seq_len - block - 1 = {seq_len - span}, got {distance}"
            )
    inputs = torch.randint(0, fillers, (batch_size, seq_len), generator=generator)
    key_ids = torch.rand(batch_size, keys, generator=generator).argsort(-1)[:, :block]
    key_ids = key_ids + fillers + 1
    if distance is None:
        # first marker at p, second at p + d, with d >= span and p + d + span <= seq_len
        d = span + (torch.rand(batch_size, generator=generator) * (seq_len - 2 * span + 1)).long()
        room = seq_len - span - d  # largest p
        p = (torch.rand(batch_size, generator=generator) * (room + 1).double()).long()
    else:
        d = torch.full((batch_size,), distance)
        p = seq_len - span - d
    rows = torch.arange(batch_size)[:, None]
    offs = torch.arange(span)
    blockv = torch.cat([torch.full((batch_size, 1), fillers), key_ids], dim=1)
    inputs[rows, p[:, None] + offs] = blockv
    second = (p + d)[:, None] + offs
    inputs[rows, second] = blockv
    targets = torch.zeros_like(inputs)
    mask = torch.zeros_like(inputs, dtype=torch.bool)
    # targets at the marker and at k_1 .. k_{block-1} of the second copy: the next key
    targets[rows, second[:, :-1]] = key_ids
    mask[rows, second[:, :-1]] = True
    return inputs, targets, mask
