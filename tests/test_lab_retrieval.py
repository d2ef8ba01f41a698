"""Tests of the repeated-block task and its lab (posenc_lib.book.lab_retrieval)."""

import dataclasses

import pytest
import torch

from posenc_lib.book import lab_retrieval as lr
from posenc_lib.book import training as tr
from posenc_lib.book.data import repeated_block_batch

TINY = tr.LabConfig(
    name="tiny", train_len=16, eval_factors=(1, 2), d_model=16, num_heads=2, num_layers=1,
    batch_size=4, lm_steps=2, copy_steps=2, retrieval_steps=2, warmup_steps=1, seeds=(0,),
    lm_eval_windows=2, copy_vocab=4, copy_delay=2, retrieval_fillers=4, retrieval_keys=4,
    retrieval_block=1, retrieval_eval_batch=4, retrieval_distances=(0.5, 1.5),
    ext_factor=2, finetune_steps=1, entropy_windows=1, dynamic_windows=1,
)  # fmt: skip


@pytest.mark.parametrize("distance", [None, 5, 20])
def test_repeated_block_targets_come_from_the_first_copy(distance):
    g = torch.Generator().manual_seed(0)
    F_, K, B = 5, 6, 3
    x, y, m = repeated_block_batch(
        batch_size=8, seq_len=32, fillers=F_, keys=K, block=B, generator=g, distance=distance
    )
    assert m.sum(1).eq(B).all()
    for row in range(8):
        markers = (x[row] == F_).nonzero().flatten().tolist()
        assert len(markers) == 2, "exactly two markers"
        p, q = markers
        if distance is not None:
            assert q - p == distance and q + B == 31, "second copy ends at the end"
        torch.testing.assert_close(x[row, p : p + B + 1], x[row, q : q + B + 1])
        keys = x[row, p + 1 : p + B + 1]
        assert keys.ge(F_ + 1).all() and keys.unique().numel() == B
        # targets: the key that follows, read from the first copy
        torch.testing.assert_close(y[row][m[row]], keys)
        assert (x[row] > F_).sum() == 2 * B, "key symbols appear only in the two copies"


def test_repeated_block_rejects_bad_input():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="block must be <= keys"):
        repeated_block_batch(batch_size=1, seq_len=32, fillers=2, keys=2, block=3, generator=g)
    with pytest.raises(ValueError, match="distance must be <="):
        repeated_block_batch(
            batch_size=1, seq_len=32, fillers=2, keys=4, block=3, generator=g, distance=29
        )
    with pytest.raises(ValueError, match="seq_len must be >="):
        repeated_block_batch(batch_size=1, seq_len=5, fillers=2, keys=4, block=3, generator=g)


def test_distances_fit_the_longest_length():
    assert lr.retrieval_distances(TINY) == [8, 24]
    assert lr.retrieval_distances(TINY, seq_len=16) == [8]


def test_window_hides_far_keys_so_a_perfect_reader_is_at_chance_past_it():
    """An oracle that copies the symbol after the earliest marker it can see: with the
    full input it is perfect at every distance; inside a window shorter than the distance
    the first copy is gone and it fails."""

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            out = torch.zeros(*x.shape, lr.retrieval_vocab(TINY))
            for b in range(x.shape[0]):
                marks = (x[b] == TINY.retrieval_fillers).nonzero().flatten().tolist()
                if len(marks) == 2:
                    out[b, marks[1], x[b, marks[0] + 1]] = 1.0
            return out + self.w

    evals = lr.eval_batches(TINY, seed=0)
    recs = lr.evaluate_retrieval(Oracle(), TINY, evals, window=TINY.train_len)
    by = {r["distance"]: r for r in recs}
    assert by[8]["accuracy"] == 1.0 and by[8]["accuracy_window"] == 1.0
    assert by[24]["accuracy"] == 1.0 and by[24]["accuracy_window"] == 0.0


def test_retrieval_lab_records():
    recs = lr.run_retrieval_lab(TINY, schemes=("learned", "rope"), device="cpu")
    names = {r["scheme"] for r in recs}
    assert names == {"learned", "rope", "trained_long"}
    learned = [r for r in recs if r["scheme"] == "learned"]
    assert all(r["accuracy"] is None and "error" in r for r in learned), "table of L rows"
    assert all(0 <= r["accuracy_window"] <= 1 for r in recs)
    long = [r for r in recs if r["scheme"] == "trained_long"]
    assert all(r["train_len"] == TINY.train_len * TINY.ext_factor for r in long)


def test_config_rejects_block_longer_than_key_alphabet():
    with pytest.raises(ValueError, match="retrieval_block must be <="):
        dataclasses.replace(TINY, retrieval_block=5)
