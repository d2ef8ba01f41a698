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
