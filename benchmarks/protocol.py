"""The sampler protocol: tasks x seeds x trials, with task cross-validation built in.

A method is a :data:`MethodFactory`: ``factory(ctx: BenchContext) -> optuna.samplers.BaseSampler``,
called once per (task, seed) run. ``ctx.train_tasks`` lists the tasks the method MAY learn from:
every task of the scenario except the tasks of the CV fold that holds ``ctx.task`` (k-fold over
the scored tasks, fixed seed). ``ctx.fold`` lets a meta-learned method cache one model per fold
(in ``ctx.cache``, a dict shared by every run of the method in the process).

Each run: ``study = optuna.create_study(direction="maximize", sampler=factory(ctx))`` (in-memory
storage), then ``n_trials`` times ``trial = study.ask()``; suggest the configuration
(:func:`benchmarks.objectives.suggest_config`); query the surrogate; ``study.tell``. The
per-trial time charged to the method (``ms``) is the wall time of ask + suggestions + tell, i.e.
the trial's wall time minus the surrogate call. The factory's own time (meta-training, portfolio
building) is recorded separately as ``setup_s``.

:func:`run_method` runs one method on all tasks and seeds and writes
``<out>/raw/sampler_<scenario>_<method>.json``; :mod:`benchmarks.report` merges every saved
result of a scenario into the tables, so methods can run in separate processes.
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution

from benchmarks.objectives import (
    SCENARIO_CONFIGS,
    all_tasks,
    evaluate_final,
    get_surrogate,
    suggest_config,
)
from benchmarks.reference import load_reference
from optuna_meta.data import YahpoSurrogate

FOLD_SEED = 0
DEFAULT_FOLDS = 5


@dataclass
class BenchContext:
    """Everything a method factory may use for one (task, seed) run.

    Attributes:
        scenario: ``"lcbench"`` or ``"rbv2_xgboost"``.
        task: The task the run is scored on (never in ``train_tasks``).
        seed: The run's seed (0..4); pass it to the sampler.
        train_tasks: Tasks the method may learn from (all scenario tasks outside this fold).
        fold: Index of the CV fold that holds ``task``; ``n_folds`` folds in all.
        n_folds: Number of folds (== number of scored tasks for leave-one-task-out).
        n_trials: The run's trial budget (sampler protocol) or ``None``.
        epoch_budget: The run's epoch budget (pruner protocol) or ``None``.
        output: The metric maximised (``val_accuracy`` / ``acc``).
        cache: A dict shared by every context of the same method in this process.
    """

    scenario: str
    task: str
    seed: int
    train_tasks: tuple[str, ...]
    fold: int
    n_folds: int
    n_trials: int | None = None
    epoch_budget: int | None = None
    output: str = ""
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def surrogate(self) -> YahpoSurrogate:
        """The scenario's YAHPO surrogate (shared, process-wide)."""
        return get_surrogate(self.scenario)

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """Optuna distributions of every hyperparameter (conditional ones included)."""
        return self.surrogate.search_space()

    @property
    def reference(self) -> dict[str, dict[str, float]]:
        """The scenario's normalisation table (task -> max/min/median)."""
        return load_reference(self.scenario)


MethodFactory = Callable[[BenchContext], optuna.samplers.BaseSampler]


@dataclass
class Method:
    """A named sampler method.

    ``seeds`` / ``n_trials`` cap the protocol's seeds and budget for slow methods (GP);
    ``label`` is the row name in the tables (defaults to ``name``). ``version`` names what the
    method's results depend on beyond its name (e.g. the recipe of its cached models): a saved
    result of another version is never resumed.
    """

    name: str
    factory: MethodFactory
    label: str | None = None
    seeds: tuple[int, ...] | None = None
    n_trials: int | None = None
    version: str = ""

    @property
    def row(self) -> str:
        return self.label or self.name


def task_folds(
    tasks: Sequence[str], n_folds: int = DEFAULT_FOLDS, seed: int = FOLD_SEED
) -> list[list[str]]:
    """Split ``tasks`` into folds: a fixed permutation (``default_rng(seed)``), then round-robin.

    ``n_folds <= 0`` or ``>= len(tasks)`` means leave-one-task-out.
    """
    ordered = sorted((str(t) for t in tasks), key=lambda t: (len(t), t))
    if n_folds <= 0 or n_folds >= len(ordered):
        return [[t] for t in ordered]
    perm = np.random.default_rng(seed).permutation(len(ordered))
    return [sorted((ordered[i] for i in perm[k::n_folds]), key=int) for k in range(n_folds)]


def make_contexts(
    scenario: str,
    tasks: Sequence[str],
    seeds: Sequence[int],
    n_folds: int = DEFAULT_FOLDS,
    fold_seed: int = FOLD_SEED,
    train_pool: Sequence[str] | None = None,
    n_trials: int | None = None,
    epoch_budget: int | None = None,
    cache: dict[str, Any] | None = None,
) -> list[BenchContext]:
    """One context per (task, seed), tasks in fold order.

    ``train_pool`` (default: every task of the scenario) minus the fold's tasks gives
    ``train_tasks``; the folds split the scored ``tasks`` only.
    """
    pool = [str(t) for t in (train_pool if train_pool is not None else all_tasks(scenario))]
    folds = task_folds(tasks, n_folds, fold_seed)
    shared = cache if cache is not None else {}
    out = []
    for k, fold_tasks in enumerate(folds):
        train = tuple(t for t in pool if t not in fold_tasks)
        for task in fold_tasks:
            for seed in seeds:
                out.append(
                    BenchContext(
                        scenario=scenario,
                        task=task,
                        seed=int(seed),
                        train_tasks=train,
                        fold=k,
                        n_folds=len(folds),
                        n_trials=n_trials,
                        epoch_budget=epoch_budget,
                        output=SCENARIO_CONFIGS[scenario].output,
                        cache=shared,
                    )
                )
    return out


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")


def run_one(ctx: BenchContext, factory: MethodFactory, n_trials: int) -> dict[str, Any]:
    """One (task, seed) run: the objective values and per-trial method time (ms)."""
    t0 = time.perf_counter()
    sampler = factory(ctx)
    setup_s = time.perf_counter() - t0
    surrogate = ctx.surrogate
    study = optuna.create_study(direction="maximize", sampler=sampler)
    values: list[float] = []
    ms: list[float] = []
    for _ in range(n_trials):
        a = time.perf_counter()
        trial = study.ask()
        params = suggest_config(trial, surrogate)
        b = time.perf_counter()
        value = evaluate_final(surrogate, ctx.task, params, ctx.output)
        c = time.perf_counter()
        study.tell(trial, value)
        d = time.perf_counter()
        values.append(value)
        ms.append(((b - a) + (d - c)) * 1e3)
    return {
        "task": ctx.task,
        "seed": ctx.seed,
        "fold": ctx.fold,
        "n_train_tasks": len(ctx.train_tasks),
        "values": values,
        "ms": [round(x, 4) for x in ms],
        "setup_s": round(setup_s, 4),
    }


def timed_ask_tell(
    study: optuna.Study,
    n_trials: int,
    suggest: Callable[[optuna.trial.Trial], dict[str, Any]],
    evaluate: Callable[[optuna.trial.Trial, dict[str, Any]], float],
) -> tuple[list[float], list[float]]:
    """``n_trials`` trials through ``study.ask`` / ``study.tell``: their values and the
    sampler's milliseconds a trial (``ask`` with ``suggest``, and ``tell``; not ``evaluate``,
    which may also set the trial's constraints).

    The loop of the setting benchmarks (``constrained``, ``fixed_params``, ``transfer``),
    whose objectives need the suggested configuration outside the trial.
    """
    values: list[float] = []
    ms: list[float] = []
    for _ in range(n_trials):
        a = time.perf_counter()
        trial = study.ask()
        params = suggest(trial)
        b = time.perf_counter()
        value = float(evaluate(trial, params))
        c = time.perf_counter()
        study.tell(trial, value)
        d = time.perf_counter()
        values.append(value)
        ms.append(round(((b - a) + (d - c)) * 1e3, 3))
    return values, ms


def raw_path(out_dir: Path, kind: str, scenario: str, name: str) -> Path:
    return Path(out_dir) / "raw" / f"{kind}_{scenario}_{name}.json"


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def run_method(
    method: Method,
    scenario: str,
    tasks: Sequence[str],
    seeds: Sequence[int],
    n_trials: int,
    out_dir: Path | None = None,
    n_folds: int = DEFAULT_FOLDS,
    fold_seed: int = FOLD_SEED,
    train_pool: Sequence[str] | None = None,
    verbose: bool = False,
    resume: bool = True,
) -> dict[str, Any]:
    """Run ``method`` on every (task, seed), save the raw result (if ``out_dir``), return it.

    The raw file is rewritten after every run; with ``resume`` (default) the runs of an
    interrupted earlier call with the same method name, CV and budget are kept.
    """
    quiet_optuna()
    seeds = [s for s in seeds if method.seeds is None or s in method.seeds]
    budget = min(n_trials, method.n_trials) if method.n_trials else n_trials
    contexts = make_contexts(
        scenario, tasks, seeds, n_folds, fold_seed, train_pool, n_trials=budget
    )
    header = {
        "kind": "sampler",
        "scenario": scenario,
        "method": method.name,
        "label": method.row,
        "version": method.version,
        "n_trials": budget,
        "seeds": list(seeds),
        "tasks": list(tasks),
        "n_folds": len(task_folds(tasks, n_folds, fold_seed)),
        "fold_seed": fold_seed,
    }

    def one(ctx: BenchContext) -> dict[str, Any]:
        r = run_one(ctx, method.factory, budget)
        if verbose:
            print(
                f"[{method.name}] task {ctx.task} seed {ctx.seed} fold {ctx.fold}: "
                f"best {max(r['values']):.4f}, median {np.median(r['ms']):.1f} ms/trial, "
                f"setup {r['setup_s']:.1f}s",
                flush=True,
            )
        return r

    return run_contexts(header, contexts, one, out_dir, resume, ("n_trials",))


RESUME_KEYS = ("kind", "scenario", "method", "n_folds", "fold_seed")


def run_contexts(
    header: dict[str, Any],
    contexts: Sequence[BenchContext],
    run_fn: Callable[[BenchContext], dict[str, Any]],
    out_dir: Path | None,
    resume: bool,
    budget_keys: Sequence[str],
) -> dict[str, Any]:
    """Run every context, saving the raw result after each run (``complete`` false until done).

    With ``resume``, runs of a saved file with the same method, CV and budget are reused.
    """
    path = (
        raw_path(out_dir, header["kind"], header["scenario"], header["method"])
        if out_dir
        else None
    )
    done: dict[tuple[str, int], dict[str, Any]] = {}
    prior_wall = 0.0
    if resume and path is not None and path.is_file():
        with open(path) as f:
            old = json.load(f)
        same = all(old.get(k) == header[k] for k in (*RESUME_KEYS, *budget_keys))
        if same and old.get("version", "") == header.get("version", ""):
            done = {(r["task"], int(r["seed"])): r for r in old["runs"]}
            prior_wall = float(old.get("wall_s", 0.0))
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    result = dict(header)
    result.update(optuna=optuna.__version__, host=f"{platform.node()} ({os.cpu_count()} cpus)")
    for i, ctx in enumerate(contexts):
        prev = done.get((ctx.task, ctx.seed))
        if prev is not None and int(prev.get("fold", -1)) == ctx.fold:
            runs.append(prev)
        else:
            runs.append(run_fn(ctx))
        result.update(
            runs=runs,
            complete=i + 1 == len(contexts),
            wall_s=round(prior_wall + time.perf_counter() - t0, 1),
        )
        if path is not None:
            write_json(path, result)
    result.update(runs=runs, complete=True)
    return result
