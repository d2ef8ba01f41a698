"""Smoke test of the benchmark suite: it runs and records what the book reads. Nothing
here asserts a timing (those are checked per run by the suite itself)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

bench_training = pytest.importorskip("bench_training")


def test_training_benchmark_records_every_scheme_and_the_unfused_control():
    res = bench_training.run("cpu", quick=True, min_time=0.01)
    schemes = [r["scheme"] for r in res["records"]]
    assert schemes == [*bench_training.SCHEMES, "none-unfused"]
    by = {r["scheme"]: r for r in res["records"]}
    assert by["none"]["ratio_to_none"] == 1.0
    assert by["none-unfused"]["ratio_to_unfused"] == 1.0
    for r in res["records"]:
        assert r["tokens_per_s"] > 0 and r["reps"] >= 1


def test_cuda_training_ratios_quoted_in_the_docstring():
    """bench_training's docstring quotes the stored H200 run: ALiBi below the unfused
    control, T5 above it."""
    import json

    path = Path(bench_training.__file__).parent / "results" / "cuda-2026-11-26.json"
    by = {r["scheme"]: r for r in json.loads(path.read_text())["training"]["records"]}
    assert round(by["alibi"]["ratio_to_unfused"], 2) == 0.85
    assert round(by["t5"]["ratio_to_unfused"], 2) == 1.33
    assert round(by["t5"]["ratio_to_none"], 2) == 1.95
    assert "0.85x" in bench_training.__doc__ and "1.33x" in bench_training.__doc__
