"""Tests of the context-extension lab (posenc_lib.book.lab_extension)."""

import dataclasses
import math

import pytest
import torch

from posenc_lib.book import lab_extension as le
from posenc_lib.book import training as tr

TINY = tr.LabConfig(
    name="tiny", train_len=8, eval_factors=(1, 2), d_model=16, num_heads=2, num_layers=1,
    batch_size=4, lm_steps=2, copy_steps=2, retrieval_steps=2, warmup_steps=1, seeds=(0,),
    lm_eval_windows=2, copy_vocab=4, copy_delay=2, retrieval_fillers=4, retrieval_keys=4,
    retrieval_block=1, retrieval_eval_batch=4, retrieval_distances=(0.5, 1.0),
    ext_factor=2, finetune_steps=1, entropy_windows=1, dynamic_windows=1,
)  # fmt: skip


def test_scaling_dicts():
    assert le.scaling_dict("none", factor=4, original_len=64) is None
    d = le.scaling_dict("yarn", factor=4, original_len=64)
    assert d == {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
    assert le.scaling_dict("llama3", factor=4, original_len=64)["high_freq_factor"] == 4.0
    with pytest.raises(ValueError, match="method must be one of"):
        le.scaling_dict("rerope", factor=4, original_len=64)


def test_yarn_betas_are_scaled_to_the_training_length():
    cfg = tr.LabConfig(train_len=64)
    assert cfg.yarn_betas == (8.0, 0.25)
    d = le.scaling_dict("yarn", factor=4, original_len=64, cfg=cfg)
    assert (d["beta_fast"], d["beta_slow"]) == (8.0, 0.25)
    off = le.scaling_dict("yarn_no_temp", factor=4, original_len=64, cfg=cfg)
    assert off["attention_factor"] == 1.0 and off["rope_type"] == "yarn"


def test_angle_coverage():
    # no scaling at the training length: every pair covers exactly what it saw
    cov = le.angle_coverage(32, base=10_000.0, train_len=64, target_len=64)
    torch.testing.assert_close(cov, torch.ones(16, dtype=torch.float64))
    # no scaling at 4L: fast pairs (full turns) stay at 1, slow pairs reach 4x their arc
    cov = le.angle_coverage(32, base=10_000.0, train_len=64, target_len=256)
    assert cov[0] == 1.0 and cov[-1] == pytest.approx(255 / 63)
    # PI at 4L maps position 255 to 255 / 4 = 63.75, a quarter step past the last
    # trained position 63, in every pair that did not turn fully
    pi = le.scaling_dict("linear", factor=4, original_len=64)
    cov = le.angle_coverage(32, base=10_000.0, train_len=64, target_len=256, scaling=pi)
    assert cov.max() == pytest.approx(63.75 / 63)


def test_dynamic_modes_agree_without_scaling():
    """Without scaling the three evaluation modes compute the same function of the same
    prefix: any difference is a bug in one of them."""
    model = tr.build_model("rope", 11, TINY, seed=0, device="cpu")
    x = torch.randint(0, 11, (2, 16), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, 1)
    modes = le.dynamic_modes_nll(model, x, y, start=8)
    assert modes["one_pass"] == pytest.approx(modes["per_prefix"], rel=1e-6)
    assert modes["one_pass"] == pytest.approx(modes["kv_cache"], rel=1e-6)


def test_dynamic_one_pass_differs_from_per_prefix():
    cfg = dataclasses.replace(TINY, d_model=32, num_heads=1)  # 16 pairs
    model = tr.build_model("rope", 11, cfg, seed=0, device="cpu", max_len=64)
    with torch.no_grad():  # sharp attention and a strong residual: rotations matter
        for block in model.blocks:
            block.attn.qkv.weight.mul_(30)
            block.attn.out.weight.mul_(30)
    model.set_rope_scaling(le.scaling_dict("dynamic", factor=4, original_len=8))
    x = torch.randint(0, 11, (2, 32), generator=torch.Generator().manual_seed(0))
    modes = le.dynamic_modes_nll(model, x, torch.roll(x, -1, 1), start=8)
    # float32 noise is about 1e-7 (see the test above)
    assert abs(modes["one_pass"] - modes["per_prefix"]) > 2e-5
    assert abs(modes["kv_cache"] - modes["per_prefix"]) > 2e-5


def test_extension_records():
    recs = le.run_context_extension(TINY, methods=("none", "yarn", "yarn_no_temp"), device="cpu")
    ext = [r for r in recs if r["task"] == "context_extension"]
    stages = {(r["method"], r["stage"]) for r in ext}
    assert ("none", "control_at_L") in stages and ("none", "trained_long") in stages
    assert ("yarn", "finetuned") in stages and ("yarn_no_temp", "finetuned") not in stages
    assert all(math.isfinite(r["ppl"]) for r in ext)
    base = [
        r for r in ext if r["method"] == "none" and r["stage"] == "none" and r["eval_len"] == 16
    ]
    assert base[0]["nll_window"] is not None
    dyn = [r for r in recs if r["task"] == "dynamic_modes"]
    assert {r["mode"] for r in dyn} == {"one_pass", "per_prefix", "kv_cache"}
    ret = [r for r in recs if r["task"] == "ext_retrieval"]
    assert {r["method"] for r in ret} == {"none", "yarn", "yarn_no_temp", "trained_long"}
