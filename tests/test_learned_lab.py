"""Chapter 3's controlled experiment: configuration, length sampling, statistics and the
stored full run."""

import dataclasses

import pytest
import torch

from posenc_lib.book import learned_lab as lab


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="schemes"):
        lab.LearnedLabConfig(schemes=("learned", "alibi"))
    with pytest.raises(ValueError, match="distributions"):
        lab.LearnedLabConfig(distributions=("zipf",))
    with pytest.raises(ValueError, match="max_len"):
        lab.LearnedLabConfig(max_len=32)


@pytest.mark.parametrize("distribution", lab.DISTRIBUTIONS)
def test_lengths_stay_in_range(distribution):
    gen = torch.Generator().manual_seed(0)
    lengths = [lab.sample_length(distribution, lab.SMALL, gen) for _ in range(2000)]
    assert min(lengths) == lab.SMALL.min_train and max(lengths) == lab.SMALL.max_train


def test_uniform_is_flat_and_long_tail_is_skewed():
    gen = torch.Generator().manual_seed(0)
    cfg = lab.SMALL
    uniform = torch.tensor([lab.sample_length("uniform", cfg, gen) for _ in range(6600)])
    tail = torch.tensor([lab.sample_length("long_tail", cfg, gen) for _ in range(6600)])
    counts = torch.bincount(uniform)[cfg.min_train :].float()
    assert counts.min() > 0.7 * counts.mean()  # every length about equally likely
    # long tail: mean 8 + 5 (minus what the cap removes), rare beyond 30
    assert 12.0 < tail.float().mean() < 13.5
    assert (tail > 30).float().mean() < 0.02


def test_batches_containing():
    counts = lab.batches_containing(torch.tensor([3, 5]), 6)
    assert counts.tolist() == [2, 2, 2, 1, 1, 0]


def test_table_stats_on_a_known_table():
    initial = torch.randn(10, 4)
    trained = initial.clone()
    trained[:6] += 1.0  # rows 0..5 moved by norm 2
    batches = torch.tensor([100] * 4 + [3, 3] + [0] * 4)
    stats = lab.table_stats(initial, trained, batches, steps=100)
    assert stats["well_rows"] == 4
    assert stats["moved_always"] == pytest.approx(2.0)
    assert stats["moved_rare"] == pytest.approx(2.0)
    assert stats["never_unchanged"]
    assert lab.table_stats(initial, trained, torch.tensor([100] * 10), 100)["moved_rare"] is None


def test_offset_similarity_of_identical_rows_is_one():
    table = torch.ones(5, 3)
    torch.testing.assert_close(lab.offset_similarity(table, 3), torch.ones(4))


def test_tiny_run_gives_one_record_per_combination():
    cfg = dataclasses.replace(lab.SMALL, steps=3, eval_batch=4, schemes=("none", "learned"))
    models = {}
    records = lab.run_learned_lab(cfg, models=models)
    assert len(records) == 2 * 2 and len(models) == 4
    for r in records:
        assert len(r["accuracy"]) == len(r["batches"]) == cfg.max_len
        assert r["accuracy"][0] is None  # position 0 has no target
        assert (r["table"] is None) == (r["scheme"] != "learned")
        assert r["batches"][cfg.max_train] == 0  # never longer than max_train


def test_same_seed_same_numbers():
    cfg = dataclasses.replace(
        lab.SMALL, steps=3, eval_batch=4, schemes=("learned",), distributions=("long_tail",)
    )
    assert lab.run_learned_lab(cfg) == lab.run_learned_lab(cfg)


def test_stored_full_run_is_complete_and_documented():
    doc = lab.load_full_results()
    stored = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["config"].items()}
    assert stored == vars(lab.FULL)
    for key in ("versions", "git", "date", "machine", "seeds"):
        assert doc[key], key
    combos = {(r["scheme"], r["distribution"], r["seed"]) for r in doc["records"]}
    assert len(combos) == len(doc["records"]) == 4 * 2 * 3
