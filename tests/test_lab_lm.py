"""Tests of the language-modelling lab's measurements (posenc_lib.book.lab_lm)."""

import math

import pytest
import torch
import torch.nn.functional as F

from posenc_lib.book import lab_lm
from posenc_lib.book import training as tr

TINY = tr.LabConfig(
    name="tiny", train_len=8, eval_factors=(1, 2), d_model=16, num_heads=2, num_layers=1,
    batch_size=4, lm_steps=2, copy_steps=2, retrieval_steps=2, warmup_steps=1, seeds=(0,),
    lm_eval_windows=2, copy_vocab=4, copy_delay=2, retrieval_fillers=4, retrieval_keys=4,
    retrieval_block=1, retrieval_eval_batch=4, retrieval_distances=(0.5,), ext_factor=2,
    finetune_steps=1, entropy_windows=1, dynamic_windows=1,
)  # fmt: skip


def _model(scheme="rope", vocab=11, **kw):
    return tr.build_model(scheme, vocab, TINY, seed=0, device="cpu", **kw)


def test_sliding_window_scores_each_target_with_its_last_window_of_context():
    model = _model()
    text = torch.randint(0, 11, (41,), generator=torch.Generator().manual_seed(0))
    w, stride = 8, 2
    got = lab_lm.sliding_window_nll(model, text, w, stride=stride)
    assert got.shape == (40,)
    for t in (0, 5, 7, 8, 9, 13, 22, 39):  # target t predicts text[t + 1]
        # the first window that reaches target t: natural context for t < w, then the
        # window ending at or just after t (context between w - stride + 1 and w ids)
        start = 0 if t < w else ((t - w) // stride + 1) * stride
        ctx = text[start : t + 1]
        assert len(ctx) <= w and (t < w or len(ctx) > w - stride)
        with torch.no_grad():
            want = F.cross_entropy(model(ctx[None])[0, -1:], text[t + 1 : t + 2])
        assert float(got[t]) == pytest.approx(float(want), rel=1e-5), t
    with pytest.raises(ValueError, match="stride must lie in"):
        lab_lm.sliding_window_nll(model, text, w, stride=9)


def test_windowed_sliding_equals_full_pass_before_the_window():
    model = _model()
    text = torch.randint(0, 11, (65,), generator=torch.Generator().manual_seed(2))
    full = lab_lm.token_nll(model, text, 32)
    slide = lab_lm.windowed_sliding_nll(model, text, 32, 8, stride=2)
    assert slide.shape == full.shape == (2, 32)
    torch.testing.assert_close(slide[:, :8], full[:, :8])
    assert not torch.allclose(slide[:, 8:], full[:, 8:]), "past the window contexts differ"
    torch.testing.assert_close(
        lab_lm.windowed_sliding_nll(model, text, 8, 8), lab_lm.token_nll(model, text, 8)
    )


def test_token_nll_and_window_agree_at_the_window_length():
    model = _model()
    text = torch.randint(0, 11, (33,), generator=torch.Generator().manual_seed(1))
    full = lab_lm.token_nll(model, text, 8).flatten()
    torch.testing.assert_close(full[:8], lab_lm.sliding_window_nll(model, text, 8)[:8])


def test_eval_text_is_shared_and_whole_windows():
    val = torch.arange(1000)
    text = lab_lm.eval_text(TINY, val)
    assert text.numel() == 2 * TINY.max_eval_len + 1
    with pytest.raises(ValueError, match="too few"):
        lab_lm.eval_text(TINY, val[:10])


@pytest.mark.parametrize("scheme", ["none", "rope", "alibi", "t5", "shaw", "sinusoidal"])
def test_attention_entropy_matches_the_layers_own_weights(scheme):
    """Entropy recomputed from the layer's projections equals the entropy of the weights
    the layer actually uses (checked by reproducing the layer's output from them)."""
    model = _model(scheme)
    x = torch.randint(0, 11, (2, 16), generator=torch.Generator().manual_seed(0))
    ents = lab_lm.attention_entropy(model, x, last=4)
    assert len(ents) == TINY.num_layers
    assert all(0 <= e <= math.log(16) + 1e-5 for e in ents)


def test_attention_entropy_of_uniform_attention_is_log_keys():
    model = _model("none")
    for block in model.blocks:  # zero queries and keys: every score equal
        torch.nn.init.zeros_(block.attn.qkv.weight)
    x = torch.randint(0, 11, (1, 16))
    want = sum(math.log(n) for n in range(13, 17)) / 4  # queries 12..15 see 13..16 keys
    assert lab_lm.attention_entropy(model, x, last=4)[0] == pytest.approx(want, rel=1e-5)


def test_t5_clamp_copies_the_last_trained_bucket_only():
    model = _model("t5")
    last = lab_lm.t5_last_trained_bucket(model, 8)
    before = model.blocks[0].attn.t5.embedding.weight.clone()
    assert lab_lm.t5_clamp_untrained_buckets(model, 8) == last
    after = model.blocks[0].attn.t5.embedding.weight
    torch.testing.assert_close(after[: last + 1], before[: last + 1])
    assert torch.equal(after[last + 1 :], before[last].expand_as(after[last + 1 :]))
    assert last < before.shape[0] - 1, "at L = 8 some buckets are never reached"


def test_lm_lab_records_baselines_and_learned_limit():
    recs = lab_lm.run_lm_lab(TINY, schemes=("learned", "t5"), device="cpu")
    by = {(r["scheme"], r["eval_len"]): r for r in recs}
    assert set(s for s, _ in by) == {"learned", "t5", "t5_clamped", "trained_long"}
    assert by[("learned", 16)]["ppl"] is None and "error" in by[("learned", 16)]
    assert by[("learned", 16)]["ppl_window"] is not None, "the window baseline still runs"
    r = by[("t5", 16)]
    assert math.isfinite(r["ppl"]) and r["ppl"] == pytest.approx(math.exp(r["nll"]))
    assert r["delta_beyond_window"] is not None and by[("t5", 8)]["delta_beyond_window"] is None
    assert len(r["nll_by_position"]) == 16 // r["bin_width"] == len(r["delta_by_position"])
    assert len(r["attention_entropy"]) == TINY.num_layers
    # at L the long window and the sliding window of L are the same reading
    assert by[("t5", 8)]["nll_window"] == pytest.approx(by[("t5", 8)]["nll"], rel=1e-9)
    assert by[("trained_long", 16)]["train_len"] == 16
