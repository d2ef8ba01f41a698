"""Fast tests of the shared lab code (posenc_lib.book.training, through the
posenc_lib.book.experiments facade): configs, schedule, training, evaluation, storage.

The models here are tiny (d_model 16, one layer) and train for a few steps: the tests check
the plumbing (seeding, masking, records, errors), not the findings of the chapters.
"""

import dataclasses
import json
import math

import pytest
import torch

from posenc_lib.book import experiments as ex
from posenc_lib.book.data import delayed_copy_batch

TINY = ex.LabConfig(
    name="tiny",
    train_len=8,
    eval_factors=(1, 2),
    d_model=16,
    num_heads=2,
    num_layers=1,
    batch_size=4,
    lm_steps=2,
    copy_steps=2,
    warmup_steps=1,
    seeds=(0,),
    lm_eval_windows=2,
    copy_eval_batch=4,
    copy_vocab=4,
    copy_delay=2,
    ext_factor=2,
    finetune_steps=1,
    retrieval_steps=2,
    retrieval_fillers=4,
    retrieval_keys=4,
    retrieval_block=1,
    retrieval_eval_batch=4,
    retrieval_distances=(0.5,),
    entropy_windows=1,
    dynamic_windows=1,
)


def test_config_choice_follows_environment(monkeypatch):
    monkeypatch.delenv("POSENC_FULL", raising=False)
    assert ex.get_config() is ex.SMALL
    monkeypatch.setenv("POSENC_FULL", "1")
    assert ex.get_config() is ex.FULL
    monkeypatch.setenv("POSENC_FULL", "0")
    assert ex.get_config() is ex.SMALL
    assert ex.get_config(full=True) is ex.FULL
    assert len(ex.FULL.seeds) >= 3, "the full run decides robustness from several seeds"


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="copy_delay must be < train_len"):
        ex.LabConfig(train_len=8, copy_delay=8)
    with pytest.raises(ValueError, match="train_len must be >= 8"):
        ex.LabConfig(train_len=4)


def test_learning_rate_schedule():
    lrs = [ex._lr_at(s, 100, 1.0, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)), "decay is monotone"


def test_masked_loss_ignores_masked_positions():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 1] = 100.0  # position 0 would be very wrong for target 0, but is masked
    targets = torch.tensor([[0, 2, 3]])
    mask = torch.tensor([[False, True, True]])
    assert float(ex._masked_loss(logits, targets, mask)) == pytest.approx(math.log(4))
    assert float(ex._masked_loss(logits, targets, None)) > 30


def test_build_model_learned_table_has_train_len_rows():
    model = ex.build_model("learned", 10, TINY, seed=0, device="cpu")
    model(torch.zeros(1, TINY.train_len, dtype=torch.long))
    with pytest.raises(ValueError):
        model(torch.zeros(1, TINY.train_len + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="scheme must be one of"):
        ex.build_model("absolute", 10, TINY, seed=0)


def test_same_seed_same_weights_and_losses():
    def run(seed):
        model = ex.build_model("rope", 4, TINY, seed=seed, device="cpu")
        losses = ex.train_model(
            model,
            lambda g: delayed_copy_batch(
                batch_size=4, seq_len=8, vocab_size=4, delay=2, generator=g
            ),
            steps=3,
            lr=1e-2,
            warmup_steps=1,
            seed=seed,
        )
        return model, losses

    (m1, l1), (m2, l2), (_, l3) = run(0), run(0), run(1)
    assert l1 == l2
    assert l1 != l3
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_learns_the_delayed_copy():
    cfg = dataclasses.replace(TINY, d_model=32, num_heads=2)
    model = ex.build_model("rope", 4, cfg, seed=0, device="cpu")

    def batch(g):
        return delayed_copy_batch(
            batch_size=16,
            seq_len=8,
            vocab_size=4,
            delay=1,
            generator=g,
        )

    losses = ex.train_model(model, batch, steps=150, lr=1e-2, warmup_steps=10, seed=0)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
    x, y, mask = batch(torch.Generator().manual_seed(99))
    acc = ex.copy_accuracy(model, x, y, mask)["accuracy"]
    assert acc > 0.6, acc  # chance is 0.25


def test_lm_metrics_of_a_uniform_model_is_log_vocab():
    class Uniform(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, tokens):
            return torch.zeros(*tokens.shape, 7) + self.w

    x = torch.randint(0, 7, (5, 12))
    m = ex.lm_metrics(Uniform(), x, x, batch_size=2, bin_width=4)
    assert m["nll"] == pytest.approx(math.log(7))
    assert len(m["nll_by_position"]) == 3
    assert all(v == pytest.approx(math.log(7)) for v in m["nll_by_position"])


def test_results_document_round_trip(tmp_path):
    records = [
        {"task": "lm", "scheme": s, "seed": k, "eval_len": 8, "ppl": p}
        for s, k, p in [("rope", 0, 2.0), ("rope", 1, 4.0), ("learned", 0, None)]
    ]
    doc = ex.results_document("lm", TINY, records, device="cpu", wall_seconds=1.0)
    for key in ("config", "seeds", "device", "versions", "date", "corpus", "git", "machine"):
        assert key in doc
    assert set(doc["git"]) == {"commit", "dirty"}
    assert doc["versions"]["torch"] == torch.__version__
    path = ex.save_results(doc, tmp_path / "sub" / "lm_tiny.json")
    back = ex.load_results(path)
    assert back == json.loads(json.dumps(doc))
    assert back["config"]["eval_factors"] == [1, 2]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a results document"):
        ex.load_results(bad)
    summary = ex.summarise(records, "ppl")
    assert summary[("rope", 8)] == {"mean": 3.0, "min": 2.0, "max": 4.0, "n": 2}
    assert summary[("learned", 8)] is None


def test_sinusoidal_model_scales_its_embeddings_by_default():
    model = ex.build_model("sinusoidal", 10, TINY, seed=0, device="cpu")
    assert model.pos.scale_input is True
    off = ex.build_model(
        "sinusoidal",
        10,
        dataclasses.replace(TINY, sinusoidal_scale_input=False),
        seed=0,
        device="cpu",
    )
    assert off.pos.scale_input is False
    x = torch.randint(0, 10, (1, 8))
    assert not torch.allclose(model(x), off(x)), "the flag must change the forward pass"


def test_copy_lab_records():
    copy = ex.run_copy_lab(TINY, schemes=("none", "learned"), device="cpu")
    by = {(r["scheme"], r["eval_len"]): r for r in copy}
    assert by[("none", 8)]["accuracy_beyond_train_len"] is None
    assert 0.0 <= by[("none", 16)]["accuracy_beyond_train_len"] <= 1.0
    assert by[("learned", 16)]["accuracy"] is None and "error" in by[("learned", 16)]


def test_stored_results_load_from_the_package_or_are_absent():
    for kind in ex.training.STORED_KINDS:
        doc = ex.load_stored(kind)
        path = ex.stored_path(kind)
        assert (doc is None) == (not path.is_file())
        if doc is not None:
            assert doc["kind"] == kind and doc["config"]["name"] == "full"
            assert {"commit", "dirty"} <= set(doc["git"])
    with pytest.raises(ValueError, match="kind must be one of"):
        ex.load_stored("nonsense")


def test_facade_exports_the_shared_training_loop():
    from posenc_lib.book import training

    assert ex.train_model is training.train_model
    for name in ex.__all__:
        assert hasattr(ex, name), name
