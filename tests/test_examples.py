"""The examples run end to end: the README's main job (quickstart.py) on the YAHPO data, the
Hugging Face Trainer search and the plain PyTorch loop."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optuna_meta.data import default_yahpo_dir

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_example(script: str, *args: str, **env: str) -> tuple[list[str], str]:
    """Run ``examples/<script>`` with ``args``; its table rows (``| ...``) and its stdout."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    return rows, result.stdout


@pytest.mark.skipif(default_yahpo_dir() is None, reason="YAHPO data folder not found")
def test_quickstart_runs_and_prints_both_samplers() -> None:
    rows, _ = run_example("quickstart.py", "--trials", "3", "--seeds", "1")
    assert rows[0].startswith("| sampler | @1 | @3 |")
    names = [r.split("|")[1].strip() for r in rows[1:]]
    assert names == ["MetaSampler", "TPESampler"]
    for row in rows[1:]:
        regrets = [float(c) for c in row.split("|")[2:4]]
        assert all(0.0 <= r <= 1.0 for r in regrets)


@pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None
    or importlib.util.find_spec("datasets") is None
    or importlib.util.find_spec("torch") is None,
    reason="transformers/datasets/torch not installed (the `examples` and `train` extras)",
)
def test_hf_trainer_hyperparameter_search_with_meta_sampler_and_pruner() -> None:
    rows, stdout = run_example(
        "hf_trainer.py",
        *("--trials", "5", "--max-steps", "20", "--eval-steps", "5"),
        HF_HUB_OFFLINE="1",
        **ONE_THREAD,
    )
    assert rows[0].startswith("| trial | state | source |")
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows[1:]]
    assert [int(c[0]) for c in cells] == list(range(5))
    assert all(c[1] in ("COMPLETE", "PRUNED") for c in cells)
    assert all(c[2] == "meta" for c in cells)  # MetaSampler served every trial
    # Trainer reports global steps 5, 10, 15, 20: completed trials end at the last one
    assert all(int(c[5]) == 20 for c in cells if c[1] == "COMPLETE")
    # MetaPruner predicted the final value of every trial that started after one completed
    first_done = next(i for i, c in enumerate(cells) if c[1] == "COMPLETE")
    assert all(math.isfinite(float(c[4])) for c in cells[first_done + 1 :])
    assert "best run: trial" in stdout


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch not installed (the `train` extra)"
)
def test_pytorch_loop_with_meta_pruner_reports_every_epoch_and_records_predictions() -> None:
    epochs = 4
    rows, stdout = run_example(
        "pytorch_pruning.py", "--trials", "8", "--epochs", str(epochs), **ONE_THREAD
    )
    assert rows[0].startswith("| trial | state | source | epochs |")
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows[1:]]
    assert [int(c[0]) for c in cells] == list(range(8))
    assert all(c[1] in ("COMPLETE", "PRUNED") and c[2] == "meta" for c in cells)
    assert all(int(c[3]) == epochs for c in cells if c[1] == "COMPLETE")
    assert all(1 <= int(c[3]) <= epochs for c in cells)
    # once a trial has completed, every later trial carries MetaPruner's probability, and its
    # predicted final value unless it reported a non-finite value (pruned at once)
    first_done = next(i for i, c in enumerate(cells) if c[1] == "COMPLETE")
    later = cells[first_done + 1 :]
    assert later and all(c[6] != "-" and (c[5] != "-" or c[4] == "nan") for c in later)
    spent = sum(int(c[3]) for c in cells)
    assert f"epochs trained {spent} of {8 * epochs}" in stdout


@pytest.mark.skipif(
    importlib.util.find_spec("xgboost") is None or importlib.util.find_spec("sklearn") is None,
    reason="xgboost/scikit-learn not installed (the `examples` extra)",
)
def test_xgboost_example_tunes_real_fits_with_the_xgboost_model() -> None:
    rows, stdout = run_example(
        "xgboost_tuning.py", "--trials", "3", "--seeds", "1", "--datasets", "wine", **ONE_THREAD
    )
    assert rows[0] == "| sampler | @1 | @3 |"
    assert [r.split("|")[1].strip() for r in rows[1:3]] == [
        "MetaSampler(rbv2-xgboost)",
        "TPESampler",
    ]
    for row in rows[1:3]:
        assert all(0.0 < float(c) <= 1.0 for c in row.split("|")[2:4])
    assert "MetaSampler(rbv2-xgboost): @1" in stdout
    assert "3/3 trials from the model" in stdout  # every name known: the model served all


@pytest.mark.skipif(
    importlib.util.find_spec("xgboost") is None or importlib.util.find_spec("sklearn") is None,
    reason="xgboost/scikit-learn not installed (the `examples` extra)",
)
def test_xgboost_example_refuses_an_unknown_dataset_clearly() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "xgboost_tuning.py"), "--datasets", "iris"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "unknown dataset(s) ['iris']" in result.stderr and "breast_cancer" in result.stderr
