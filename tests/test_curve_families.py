"""Tests of ``benchmarks/curve_families.py``: the bookkeeping that judges each pruning decision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from benchmarks import curve_families as cf


def test_a_prune_is_wrong_only_when_the_would_be_final_beats_the_best_completed_then() -> None:
    run = {
        "states": "PCPPC",
        "costs": [3.0, 53.0, 56.0, 59.0, 109.0],
        "finals": [0.9, 0.5, 0.6, 0.4, 0.7],
    }
    trials = cf.expand(run, "maximize")
    assert [t["done"] for t in trials] == [0, 0, 1, 1, 1]
    assert [t["best"] for t in trials] == [None, None, 0.5, 0.5, 0.5]
    wrong = cf.wrong_prunes(run, "maximize")
    assert [t["final"] for t in wrong] == [0.6]  # the first had nothing to beat
    assert [t["final"] for t in cf.wrong_prunes(run, "minimize")] == [0.4]
    assert cf.best_within(run, "maximize", 100.0) == 0.5
    assert cf.best_within(run, "maximize", 109.0) == 0.7
    assert cf.best_within(run, "minimize", 200.0) == 0.5


def test_a_study_spends_its_budget_and_no_pruning_prunes_nothing(tmp_path: Path) -> None:
    family = cf.FAMILIES["hf_few"]
    budget = cf.BUDGET_TRIALS * float(family.steps[-1])
    for pruner in ("none", "meta"):
        run = cf.run_study(family, "random", pruner, seed=0)
        costs = run["costs"]
        assert costs == sorted(costs) and costs[-1] >= budget
        assert costs[-2] < budget  # it stopped once the budget was spent
        if pruner == "none":
            assert run["states"] == "C" * int(cf.BUDGET_TRIALS)
        # Each would-be final is the family's curve at its last step, whatever was pruned.
        assert all(np.isfinite(run["finals"]))
    verbosity = optuna.logging.get_verbosity()
    try:  # the script quiets Optuna's logger, which later tests' log checks read
        text = cf.main(["--families", "hf_few", "--seeds", "0", "--pruners", "meta,none",
                        "--samplers", "random", "--out", str(tmp_path)])  # fmt: skip
    finally:
        optuna.logging.set_verbosity(verbosity)
    saved = json.loads((tmp_path / "raw" / "curve_families_hf_few.json").read_text())
    assert len(saved["runs"]) == 2
    assert "| hf_few | random | meta |" in text and "| hf_few | random | none |" in text
    assert (tmp_path / "curve_families.md").read_text() == text


def test_an_unknown_family_is_refused_with_the_known_ones_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cf.main(["--families", "crossing,nope"])
    err = capsys.readouterr().err
    assert "unknown families ['nope']" in err and "crossing" in err
