"""The pruner protocol on LCBench (multi-fidelity: epochs 1..52).

A pruner method is a :data:`PrunerFactory`: ``factory(ctx) -> (sampler, pruner)``, called once
per (task, seed) run with the same :class:`benchmarks.protocol.BenchContext` as the sampler
protocol (``ctx.train_tasks`` excludes the scored task's CV fold; ``ctx.epoch_budget`` is set).

Each run: ``study = create_study(direction="maximize", sampler=..., pruner=...,
study_name="<scenario>-<task>-seed<seed>")`` (a fixed name: ``HyperbandPruner`` assigns trials
to brackets by hashing the study name, so an unnamed study with its random name would make
Hyperband runs irreproducible); trials are
asked one after the other; the trial's configuration is suggested, its whole learning curve is
computed in one surrogate call, then for epoch = 1..52: ``trial.report(curve[epoch-1], epoch)``,
one epoch is charged, and (for epoch < 52) ``trial.should_prune()`` may stop it (told as
PRUNED, Optuna then uses its last reported value). A trial that reaches epoch 52 is COMPLETE
with the epoch-52 value. The run stops as soon as ``epoch_budget`` epochs (default 5200) are
spent; a trial cut by the budget is told FAIL and never counts.

Scores (:mod:`benchmarks.report`): regret of the best COMPLETED trial's epoch-52 value after E
cumulative epochs (1.0 before the first completed trial), normalised as in the sampler protocol
with ``top = max(ref_max, best completed value so far)``; speed-up against the no-pruning
run of the same sampler, task and seed (``baseline``): epochs that run needed to reach its final
best, divided by the epochs this run needed to reach that value (0 when never).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from benchmarks.objectives import SCENARIO_CONFIGS, evaluate_curve, suggest_config
from benchmarks.protocol import (
    DEFAULT_FOLDS,
    FOLD_SEED,
    BenchContext,
    make_contexts,
    quiet_optuna,
    run_contexts,
    task_folds,
)

PrunerFactory = Callable[[BenchContext], tuple[BaseSampler, BasePruner]]

DEFAULT_EPOCH_BUDGET = 5200
STATE_COMPLETE, STATE_PRUNED, STATE_CUT = 0, 1, 2


@dataclass
class PrunerMethod:
    """A named (sampler, pruner) method; ``baseline`` names its no-pruning counterpart.

    ``version``: as :class:`benchmarks.protocol.Method` (results of another version are never
    resumed).
    """

    name: str
    factory: PrunerFactory
    label: str | None = None
    baseline: str | None = None
    seeds: tuple[int, ...] | None = None
    version: str = ""

    @property
    def row(self) -> str:
        return self.label or self.name


def run_one_pruned(
    ctx: BenchContext,
    factory: PrunerFactory,
    epoch_budget: int,
    constraint: Callable[[dict[str, Any]], float] | None = None,
    on_told: Callable[[optuna.Study, int, int, np.ndarray], None] | None = None,
) -> dict[str, Any]:
    """One (task, seed) run; each trial is recorded as ``[epochs, state, epoch-52 value]``.

    With ``constraint`` (``params -> value``, feasible when ``<= 0``) a completed trial calls
    ``trial.set_constraint("constraint", value)`` before it is told, as a user does with a
    quantity known at the end of training, and the result gains ``feasible`` per trial.
    ``on_told(study, trial_number, state, curve)`` is called after each trial is told, with
    its whole curve (which the pruner never sees), for benchmarks that look at single trials.
    """
    n_epochs = SCENARIO_CONFIGS[ctx.scenario].n_epochs
    assert n_epochs is not None
    t0 = time.perf_counter()
    sampler, pruner = factory(ctx)
    setup_s = time.perf_counter() - t0
    surrogate = ctx.surrogate
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        study_name=f"{ctx.scenario}-{ctx.task}-seed{ctx.seed}",
    )
    trials: list[list[float]] = []
    feasible: list[bool] = []
    ms: list[float] = []
    spent = 0
    while spent < epoch_budget:
        a = time.perf_counter()
        trial = study.ask()
        params = suggest_config(trial, surrogate)
        b = time.perf_counter()
        curve = evaluate_curve(surrogate, ctx.task, params, ctx.output)
        overhead = b - a
        state = STATE_COMPLETE
        used = 0
        for epoch in range(1, n_epochs + 1):
            c = time.perf_counter()
            trial.report(float(curve[epoch - 1]), epoch)
            spent += 1
            used += 1
            if epoch == n_epochs:
                overhead += time.perf_counter() - c
                break
            if spent >= epoch_budget:
                state = STATE_CUT
                overhead += time.perf_counter() - c
                break
            prune = trial.should_prune()
            overhead += time.perf_counter() - c
            if prune:
                state = STATE_PRUNED
                break
        margin = constraint(params) if constraint is not None else 0.0
        feasible.append(margin <= 0.0)
        c = time.perf_counter()
        if state == STATE_COMPLETE:
            if constraint is not None:
                trial.set_constraint("constraint", margin)
            study.tell(trial, float(curve[-1]))
        elif state == STATE_PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
        overhead += time.perf_counter() - c
        ms.append(overhead * 1e3)
        if on_told is not None:
            on_told(study, trial.number, state, curve)
        trials.append([used, state, float(curve[-1]) if state == STATE_COMPLETE else float("nan")])
    out: dict[str, Any] = {
        "task": ctx.task,
        "seed": ctx.seed,
        "fold": ctx.fold,
        "trials": trials,
        "ms": [round(x, 4) for x in ms],
        "setup_s": round(setup_s, 4),
    }
    if constraint is not None:
        out["feasible"] = feasible
    return out


def run_pruner_method(
    method: PrunerMethod,
    tasks: Sequence[str],
    seeds: Sequence[int],
    epoch_budget: int = DEFAULT_EPOCH_BUDGET,
    out_dir: Path | None = None,
    scenario: str = "lcbench",
    n_folds: int = DEFAULT_FOLDS,
    fold_seed: int = FOLD_SEED,
    train_pool: Sequence[str] | None = None,
    verbose: bool = False,
    resume: bool = True,
) -> dict[str, Any]:
    """Run a pruner method on every (task, seed); save ``raw/pruner_<scenario>_<name>.json``."""
    quiet_optuna()
    seeds = [s for s in seeds if method.seeds is None or s in method.seeds]
    contexts = make_contexts(
        scenario, tasks, seeds, n_folds, fold_seed, train_pool, epoch_budget=epoch_budget
    )
    header = {
        "kind": "pruner",
        "scenario": scenario,
        "method": method.name,
        "label": method.row,
        "version": method.version,
        "baseline": method.baseline,
        "epoch_budget": epoch_budget,
        "seeds": list(seeds),
        "tasks": list(tasks),
        "n_folds": len(task_folds(tasks, n_folds, fold_seed)),
        "fold_seed": fold_seed,
    }
    t0 = time.perf_counter()

    def one(ctx: BenchContext) -> dict[str, Any]:
        r = run_one_pruned(ctx, method.factory, epoch_budget)
        if verbose:
            tr = np.asarray(r["trials"], dtype=float)
            done = tr[tr[:, 1] == STATE_COMPLETE]
            best = float(np.nanmax(done[:, 2])) if len(done) else float("nan")
            print(
                f"[{method.name}] task {ctx.task} seed {ctx.seed}: "
                f"{len(tr)} trials, {len(done)} complete, best {best:.3f}, "
                f"{time.perf_counter() - t0:.0f}s",
                flush=True,
            )
        return r

    return run_contexts(header, contexts, one, out_dir, resume, ("epoch_budget",))


def completion_curve(trials: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative epochs at each completed trial's end and its epoch-52 value."""
    tr = np.asarray(trials, dtype=float).reshape(-1, 3)
    cum = np.cumsum(tr[:, 0])
    done = tr[:, 1] == STATE_COMPLETE
    return cum[done], tr[done, 2]


def best_completed_at(trials: Sequence[Sequence[float]], budgets: Sequence[int]) -> np.ndarray:
    """Best completed epoch-52 value after each budget of cumulative epochs (NaN: none yet)."""
    cum, vals = completion_curve(trials)
    out = np.full(len(budgets), np.nan)
    for i, e in enumerate(budgets):
        ok = cum <= e
        if ok.any():
            out[i] = vals[ok].max()
    return out


def epochs_to_reach(trials: Sequence[Sequence[float]], target: float) -> float:
    """Cumulative epochs when a completed trial first reaches ``target`` (inf when never)."""
    cum, vals = completion_curve(trials)
    hit = np.nonzero(vals >= target)[0]
    return float(cum[hit[0]]) if len(hit) else float("inf")
