"""Tests of posenc_lib.book.data: corpus, tokenizer, batches and the delayed-copy task."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from posenc_lib.book import data


@pytest.fixture(scope="module")
def corpus():
    return data.load_corpus()


def test_corpus_ships_with_python_and_is_ascii_english(corpus):
    assert len(corpus) > 200_000, "pydoc_data.topics should hold a few hundred kB of text"
    assert corpus.isascii()
    # A few sentences the CPython reference documentation is sure to contain.
    assert 'The "for" statement' in corpus
    assert "statement" in corpus and "exception" in corpus
    assert "Python Software Foundation License" in data.CORPUS_SOURCE
    assert data.load_corpus(max_chars=100) == corpus[:100]


def test_corpus_folds_typographic_characters():
    assert data._fold_to_ascii("\u201cquoted\u201d \u2014 caf\u00e9\u2026") == '"quoted" - cafe...'
    assert data._fold_to_ascii("\u4e2d") == "?"


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"name": "wiki"}, ValueError, "name must be one of"),
        ({"max_chars": 0}, ValueError, "max_chars must be >= 1"),
        ({"max_chars": 1.5}, TypeError, "max_chars must be an int"),
    ],
)
def test_load_corpus_rejects_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        data.load_corpus(**kwargs)


def test_tokenizer_vocabulary_is_sorted_and_complete(corpus):
    tok = data.CharTokenizer.from_text(corpus)
    assert list(tok.chars) == sorted(set(corpus))
    assert 60 <= tok.vocab_size <= 100, tok.vocab_size
    ids = tok.encode(corpus[:5000])
    assert ids.dtype == torch.long and ids.min() >= 0 and ids.max() < tok.vocab_size
    assert tok.decode(ids) == corpus[:5000]


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1))
def test_tokenizer_round_trip(text):
    tok = data.CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode(ids.tolist()) == text
    # Equal characters get equal ids, different characters different ids.
    for a, b in zip(text, ids.tolist(), strict=True):
        assert tok.chars[b] == a


def test_tokenizer_rejects_unknown_characters_and_ids():
    tok = data.CharTokenizer.from_text("abc")
    assert tok.encode("cab").tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("abd")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 3\)"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match="non-empty str"):
        data.CharTokenizer.from_text("")


def test_split_is_contiguous_and_disjoint():
    tokens = torch.arange(1000)
    train, val = data.split_tokens(tokens, val_fraction=0.1)
    assert train.numel() == 900 and val.numel() == 100
    torch.testing.assert_close(torch.cat([train, val]), tokens)
    with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 1\)"):
        data.split_tokens(tokens, val_fraction=1.0)
    with pytest.raises(ValueError, match="tokens must have 1 dimensions"):
        data.split_tokens(tokens[None], val_fraction=0.1)


def test_lm_batch_targets_are_the_next_characters():
    tokens = torch.arange(500) * 7 % 101  # position t is recoverable from the value
    g = torch.Generator().manual_seed(0)
    x, y = data.lm_batch(tokens, batch_size=8, seq_len=16, generator=g)
    assert x.shape == y.shape == (8, 16)
    torch.testing.assert_close(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y, strict=True):
        start = (tokens == row_x[0]).nonzero()[0].item()  # values are distinct
        torch.testing.assert_close(row_x, tokens[start : start + 16])
        torch.testing.assert_close(row_y, tokens[start + 1 : start + 17])
    # Same seed, same batch; a different seed gives a different batch.
    x2, _ = data.lm_batch(
        tokens, batch_size=8, seq_len=16, generator=torch.Generator().manual_seed(0)
    )
    x3, _ = data.lm_batch(
        tokens, batch_size=8, seq_len=16, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(x, x2)
    assert not torch.equal(x, x3)
    with pytest.raises(ValueError, match="need at least seq_len"):
        data.lm_batch(tokens[:10], batch_size=1, seq_len=10, generator=g)


def test_lm_eval_windows_are_consecutive():
    tokens = torch.arange(101)
    x, y = data.lm_eval_windows(tokens, seq_len=10)
    assert x.shape == (10, 10)
    torch.testing.assert_close(x.flatten(), torch.arange(100))
    torch.testing.assert_close(y.flatten(), torch.arange(1, 101))
    x, _ = data.lm_eval_windows(tokens, seq_len=10, max_windows=3)
    assert x.shape == (3, 10)
    with pytest.raises(ValueError, match="too few for one window"):
        data.lm_eval_windows(tokens, seq_len=200)


def test_unigram_nll_hand_worked():
    # Counts + 1 = [3, 2] -> p = [0.6, 0.4]; evaluate on [0, 1].
    nll = data.unigram_nll(torch.tensor([0, 0, 1]), torch.tensor([0, 1]), vocab_size=2)
    assert math.isclose(nll, -(math.log(0.6) + math.log(0.4)) / 2, rel_tol=1e-12)


def test_delayed_copy_targets_are_delayed_inputs():
    g = torch.Generator().manual_seed(3)
    x, y, mask = data.delayed_copy_batch(
        batch_size=4, seq_len=12, vocab_size=5, delay=3, generator=g
    )
    assert x.shape == y.shape == mask.shape == (4, 12)
    assert mask.dtype == torch.bool
    assert not mask[:, :3].any() and mask[:, 3:].all()
    for t in range(3, 12):
        torch.testing.assert_close(y[:, t], x[:, t - 3])
    assert x.min() >= 0 and x.max() < 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delay": 0}, "delay must be >= 1"),
        ({"seq_len": 3}, "seq_len must be >= 4"),
        ({"vocab_size": 1}, "vocab_size must be >= 2"),
    ],
)
def test_delayed_copy_rejects_bad_input(kwargs, match):
    args = {
        "batch_size": 2,
        "seq_len": 8,
        "vocab_size": 4,
        "delay": 3,
        "generator": torch.Generator().manual_seed(0),
    } | kwargs
    with pytest.raises(ValueError, match=match):
        data.delayed_copy_batch(**args)


def test_corpus_is_the_stored_snapshot_whatever_the_python():
    import hashlib
    import platform

    text = data.load_corpus()
    assert hashlib.sha256(text.encode("ascii")).hexdigest() == data.CORPUS_SHA256
    assert len(text) == 465_089
    if platform.python_version() == data.CORPUS_PYTHON:  # the snapshot is that release's
        from pydoc_data.topics import topics

        live = "\n\n".join(topics[k].strip("\n") for k in sorted(topics))
        assert data._fold_to_ascii(live) == text
