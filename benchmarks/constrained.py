"""Constrained HPO: maximise accuracy under a training-time budget (Optuna 5 constraints).

Why: Optuna 5 made constraints first-class (``trial.set_constraint``); TPE and the GP sampler
use them, and ``study.best_trial`` is the best *feasible* trial. A sampler that ignores them
keeps proposing the neighbourhood of an accurate but infeasible trial. This benchmark measures
what MetaSampler's constraint handling (infeasible trials rank below every feasible one) buys.

Protocol: the sampler protocol's tasks, seeds and 5-fold task CV (the fold models of
``benchmarks.meta_methods``) and objective (LCBench: ``val_accuracy`` at epoch 52;
rbv2_xgboost: ``acc``), and one constraint per task: YAHPO's predicted training time (``time``;
``timetrain``) must not exceed the task's :data:`TIME_QUANTILE` quantile over
:data:`N_REFERENCE` random configurations (so about three quarters of the space is
infeasible, and on most tasks the unconstrained optimum too). The regret after ``n`` trials
is that of the best *feasible* trial so far, normalised per task by the best feasible value of
the same random configurations and the worst value of all of them (floored at 0; 1 while no
trial is feasible). Methods:

* ``meta``: ``MetaSampler`` (fold model); the objective calls ``trial.set_constraint``;
* ``meta_blind``: the same sampler, but the objective keeps the constraint to itself, as
  MetaSampler saw every study before it read constraints (feasibility only enters the score);
* ``tpe``: ``TPESampler`` with the constraint set (Optuna's TPE reads it);
* ``random``: ``RandomSampler``.

Run (about 2 minutes on one core):
    .. code-block:: bash

        python -m benchmarks.constrained --seeds 0-4 --n-trials 50
        python -m benchmarks.constrained --heldout   # YAHPO's test instances, shipped model
        python -m benchmarks.constrained --scenario rbv2_xgboost   # about 6 minutes
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._cli import add_setting_arguments, parse_ints, parse_methods, run_methods
from benchmarks._tables import median_ms, regret_table
from benchmarks.heldout import SHIPPED_MODEL
from benchmarks.objectives import get_surrogate, scored_tasks, suggest_config
from benchmarks.protocol import BenchContext, make_contexts, quiet_optuna, timed_ask_tell
from optuna_meta.data import TEST_INSTANCES

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OUTPUTS = {"lcbench": ("val_accuracy", "time"), "rbv2_xgboost": ("acc", "timetrain")}
"""scenario -> (the metric maximised, the training time the budget limits)."""
TIME_QUANTILE = 0.25
"""The time budget: this quantile of the random configurations' predicted training time."""
N_REFERENCE = 100_000
"""Random configurations per task behind the budget and the normalisation."""
REFERENCE_SEED = 0
BUDGETS = (1, 2, 3, 5, 10, 20, 30, 50)
SHIPPED_KEY = "use the shipped model"


@functools.cache
def _task_outputs(scenario: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    surrogate = get_surrogate(scenario)
    cols = surrogate.sample_columns(N_REFERENCE, np.random.default_rng(REFERENCE_SEED))
    metric, cost = OUTPUTS[scenario]
    out = surrogate.evaluate(task, cols, outputs=[metric, cost])
    return out[metric], out[cost]


def task_setting(
    task: str, quantile: float = TIME_QUANTILE, scenario: str = "lcbench"
) -> tuple[float, float, float]:
    """``(time budget, best feasible value, worst value)`` of ``task``'s random configurations."""
    acc, seconds = _task_outputs(scenario, task)
    budget = float(np.quantile(seconds, quantile))
    return budget, float(np.max(acc[seconds <= budget])), float(np.min(acc))


def _meta(ctx: BenchContext, **kwargs: Any) -> optuna.samplers.BaseSampler:
    from benchmarks.meta_methods import fold_model
    from optuna_meta import MetaSampler

    if ctx.cache.get(SHIPPED_KEY):
        return MetaSampler(model=SHIPPED_MODEL[ctx.scenario], seed=ctx.seed, **kwargs)
    key = ("meta-model", ctx.scenario, ctx.train_tasks)
    if key not in ctx.cache:
        ctx.cache[key] = fold_model(ctx.scenario, ctx.train_tasks)
    return MetaSampler(model=ctx.cache[key], seed=ctx.seed, **kwargs)


METHODS: dict[str, tuple[Callable[[BenchContext], optuna.samplers.BaseSampler], bool]] = {
    "meta": (_meta, True),
    "meta_blind": (_meta, False),
    # Session 15's fixed fallback schedule, the paired baseline of `adaptive_fallback`.
    "meta_fixedschedule": (
        lambda ctx: _meta(ctx, adaptive_fallback=False, task_optima=False),
        True,
    ),
    "tpe": (lambda ctx: optuna.samplers.TPESampler(seed=ctx.seed), True),
    "random": (lambda ctx: optuna.samplers.RandomSampler(seed=ctx.seed), True),
}
"""name -> (sampler factory, whether the objective tells the study its constraint)."""


def run_one(
    ctx: BenchContext, method: str, n_trials: int, quantile: float = TIME_QUANTILE
) -> dict[str, Any]:
    factory, tell_constraint = METHODS[method]
    surrogate = ctx.surrogate
    budget, _, _ = task_setting(ctx.task, quantile, ctx.scenario)
    metric, cost = OUTPUTS[ctx.scenario]
    study = optuna.create_study(direction="maximize", sampler=factory(ctx))
    feasible: list[bool] = []

    def evaluate(trial: optuna.trial.Trial, params: dict[str, Any]) -> float:
        out = surrogate.evaluate(ctx.task, [params], outputs=[metric, cost])
        seconds = float(out[cost][0])
        if tell_constraint:
            trial.set_constraint("time", seconds - budget)
        feasible.append(seconds <= budget)
        return float(out[metric][0])

    values, ms = timed_ask_tell(
        study, n_trials, lambda trial: suggest_config(trial, surrogate), evaluate
    )
    return {
        "task": ctx.task,
        "seed": ctx.seed,
        "scenario": ctx.scenario,
        "quantile": quantile,
        "values": values,
        "feasible": feasible,
        "ms": ms,
    }


def regret_curve(run: dict[str, Any]) -> np.ndarray:
    """Normalised regret of the best feasible trial after each trial (1 while none is)."""
    _, top, worst = task_setting(
        run["task"], run.get("quantile", TIME_QUANTILE), run.get("scenario", "lcbench")
    )
    vals = np.where(run["feasible"], run["values"], -np.inf)
    best = np.maximum.accumulate(vals)
    with np.errstate(invalid="ignore"):
        r = (np.maximum(top, best) - best) / (np.maximum(top, best) - worst)
    return np.clip(np.where(np.isfinite(best), r, 1.0), 0.0, 1.0)


def report(
    runs: dict[str, list[dict[str, Any]]],
    command: str,
    quantile: float = TIME_QUANTILE,
    scenario: str = "lcbench",
) -> str:
    title = (
        f"Constrained {scenario} (`{OUTPUTS[scenario][1]}` <= the task's {quantile:.0%} "
        f"quantile over {N_REFERENCE:,} random configurations), mean normalised regret of the "
        "best feasible trial; 5-fold task CV for MetaSampler."
    )
    columns = (("feasible trials", _feasible_share), ("ms/trial", median_ms))
    return regret_table(title, runs, regret_curve, BUDGETS, command, columns)


def _feasible_share(runs: Sequence[dict[str, Any]]) -> str:
    return f"{np.mean([np.mean(r['feasible']) for r in runs]):.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(parser, OUTPUTS, METHODS)
    parser.add_argument("--quantile", type=float, default=TIME_QUANTILE)
    parser.add_argument(
        "--heldout",
        action="store_true",
        help="YAHPO's held-out test instances, MetaSampler with the shipped model",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    quiet_optuna()
    methods = parse_methods(parser, args.methods, METHODS)
    if args.heldout:
        tasks, cache = list(TEST_INSTANCES[args.scenario]), {SHIPPED_KEY: True}
        contexts = make_contexts(
            args.scenario, tasks, parse_ints(args.seeds), n_folds=0, cache=cache
        )
    else:
        contexts = make_contexts(
            args.scenario, scored_tasks(args.scenario), parse_ints(args.seeds)
        )
    runs = run_methods(
        methods, contexts, lambda ctx, m: run_one(ctx, m, args.n_trials, args.quantile)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "raw").mkdir(exist_ok=True)
    stem = (
        f"constrained_{args.scenario}"
        + ("" if args.quantile == TIME_QUANTILE else f"_q{round(100 * args.quantile)}")
        + ("_heldout" if args.heldout else "")
    )
    raw = args.out / "raw" / f"{stem}.json"
    raw.write_text(json.dumps({"runs": runs}, separators=(",", ":")))
    command = (
        "python -m benchmarks.constrained"
        + ("" if args.scenario == "lcbench" else f" --scenario {args.scenario}")
        + f" --seeds {args.seeds} --n-trials {args.n_trials}"
        + (f" --methods {args.methods}" if args.methods != ",".join(METHODS) else "")
        + (f" --quantile {args.quantile:g}" if args.quantile != TIME_QUANTILE else "")
        + (" --heldout" if args.heldout else "")
    )
    text = report(runs, command, args.quantile, args.scenario)
    if args.heldout:
        text = text.replace(
            "5-fold task CV for MetaSampler.",
            f"YAHPO's held-out test instances {', '.join(TEST_INSTANCES[args.scenario])}; "
            f"MetaSampler with the shipped model {SHIPPED_MODEL[args.scenario]} "
            "(never trained on them).",
        )
    (args.out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
