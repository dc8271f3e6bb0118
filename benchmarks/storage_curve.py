"""MetaPruner with a curve model meta-trained from past studies in an Optuna storage.

Why: the shipped curve model learned from 2,000 YAHPO-sampled curves per LCBench task. A user
meta-trains from what they have, their past studies (``optuna-meta train-curve --storage ...``),
usually far fewer trials per task. This benchmark measures that path end to end on the pruner
protocol, with the same 5-fold task CV as the other pruner rows:

1. Past studies: one study per LCBench task (YAHPO's test instances excluded), each
   ``N_PAST_TRIALS`` random configurations trained for all 52 epochs (one no-pruning
   5200-epoch random search), drawn with seed ``PAST_SEED`` (not the shipped model's seed 0),
   written with :func:`optuna_meta.data.export_to_storage` into a journal file.
2. Per fold: ``optuna-meta train-curve --storage <journal> --study <task> ...`` with the
   fold's training tasks, the command a user runs (``optuna_meta.cli.main``).
3. ``TPESampler`` + ``MetaPruner(model=<that file>, median_offset=0, n_ramp_trials=5)``:
   the defaults of session 10, when it was measured.

Run (writes ``benchmarks/results/raw/pruner_lcbench_tpe_meta_storage.json``)::

    python -m benchmarks.run_pruners --full --extra benchmarks.storage_curve:TPE_STORAGE

The storage and the fold models are cached under ``benchmarks/results/cache/`` (git-ignored).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from optuna.samplers import TPESampler

from benchmarks.meta_methods import CACHE_DIR, disk_cached, fold_training_tasks
from benchmarks.meta_pruner_methods import TRAINING_VERSION
from benchmarks.protocol import BenchContext
from benchmarks.pruning import PrunerMethod
from optuna_meta import MetaPruner
from optuna_meta.curve import FEATURE_NAMES, CurveModel

M = TypeVar("M")

N_PAST_TRIALS = 100
"""Trials of each past study: one 5200-epoch random search without pruning."""

PAST_SEED = 1
"""Seed of the past studies' configurations (the shipped model's curves used seed 0)."""

STORAGE_VERSION = 1
"""Bumped when the past studies or the training command change (invalidates the cache)."""


def past_studies(n_trials: int = N_PAST_TRIALS, seed: int = PAST_SEED) -> Path:
    """A journal file with one past study per LCBench task but the test instances (cached)."""
    from optuna_meta.data import export_to_storage, load_yahpo

    path = CACHE_DIR / f"past_lcbench_{n_trials}_{seed}_v{STORAGE_VERSION}.log"
    if not path.is_file():
        data = load_yahpo("lcbench", n_trials, seed=seed)  # test instances excluded
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
        tmp.unlink(missing_ok=True)
        export_to_storage(data, tmp)
        tmp.replace(path)
    return path


def train_on_past_studies(
    command: str,
    tasks: list[str],
    name: str,
    load: Callable[[Path], M],
    extra: Sequence[str] = (),
) -> M:
    """``optuna-meta <command> --storage <past studies> --study lcbench/<task> ... <extra>``
    (the command a user runs), its model file loaded with ``load``."""
    from optuna_meta.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.npz"
        argv = [command, "--storage", str(past_studies()), "--out", str(out), "--name", name]
        for task in tasks:
            argv += ["--study", f"lcbench/{task}"]
        argv += list(extra)
        code = main(argv)
        if code != 0:
            raise RuntimeError(f"optuna-meta {command} failed with exit code {code}")
        return load(out)


def storage_fold_model(train_tasks: tuple[str, ...]) -> CurveModel:
    """The curve model ``optuna-meta train-curve`` writes from the fold's past studies."""
    tasks = fold_training_tasks("lcbench", train_tasks)

    def build(digest: str) -> CurveModel:
        return train_on_past_studies(
            "train-curve", tasks, f"storage-curve-cv-{digest}", CurveModel.load
        )

    key = [tasks, N_PAST_TRIALS, PAST_SEED, STORAGE_VERSION, list(FEATURE_NAMES), TRAINING_VERSION]
    return disk_cached("storage_curve_lcbench", key, CurveModel.load, build)


def _tpe_storage(ctx: BenchContext) -> tuple[TPESampler, MetaPruner]:
    key = ("storage-curve-model", ctx.train_tasks)
    if key not in ctx.cache:
        ctx.cache[key] = storage_fold_model(ctx.train_tasks)
    # measured in session 10, with that session's defaults (the target capped at the median,
    # the ramp over 5 completed trials); session 11 changed both
    pruner = MetaPruner(ctx.cache[key], median_offset=0, n_ramp_trials=5)
    return TPESampler(seed=ctx.seed), pruner


TPE_STORAGE = PrunerMethod(
    "tpe_meta_storage",
    _tpe_storage,
    label=f"TPE + MetaPruner(model=train-curve on {N_PAST_TRIALS}-trial past studies) "
    "[session-10 defaults; 5-fold task CV]",
    baseline="tpe_nop",
    version=f"storage{STORAGE_VERSION}+curve{TRAINING_VERSION}",
)
