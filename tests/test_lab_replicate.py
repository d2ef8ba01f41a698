"""The replicate of the stored full run (a 2-core CPU instead of one H200) and its cost:
the same configuration and seeds as the stored run, and a cost summary that agrees with
the four result documents."""

import json
from importlib import resources

import pytest

from posenc_lib.book import training

KINDS = ("lm", "copy", "retrieval", "extension")


@pytest.mark.parametrize("kind", KINDS)
def test_replicate_repeats_the_stored_run_on_other_hardware(kind):
    stored, rep = training.load_stored(kind), training.load_replicate(kind)
    assert rep["config"] == stored["config"] and rep["seeds"] == stored["seeds"]
    assert rep["config"]["name"] == "full"
    assert (stored["device"], rep["device"]) == ("cuda", "cpu")
    assert rep["machine"]["cpu_count"] == 2 and rep["torch_threads"] == 2
    # the same experiments: one record per (scheme or method, seed, length ...) in both
    assert len(rep["records"]) == len(stored["records"])


def test_cost_summary_matches_the_documents_and_the_limit():
    path = resources.files("posenc_lib.book") / "results" / "lab_cost" / "full_cpu_2core.json"
    cost = json.loads(path.read_text())
    walls = {k: training.load_replicate(k)["wall_seconds"] for k in KINDS}
    assert cost["wall_seconds"] == walls
    # the total is the whole process (imports, data), a little more than the four labs
    assert sum(walls.values()) <= cost["total_wall_seconds"] <= sum(walls.values()) + 60
    assert cost["total_wall_seconds"] < 60 * 60  # issue 17: the full run within an hour
    assert cost["machine"]["cpu_count"] == 2
    assert cost["config"] == training.load_stored("lm")["config"]
