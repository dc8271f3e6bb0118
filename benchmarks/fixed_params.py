"""Studies that fix some hyperparameters: ``MetaSampler(fixed_params=...)`` against the default.

Why: a user often tunes part of a model and fixes the rest in code (the batch size and the
architecture of an MLP, XGBoost's default tree booster). The study never suggests those, so the
surrogate must assume something for them: the model's own defaults, unless the user passes
``fixed_params``. This benchmark measures what telling it buys.

Protocol: the sampler protocol's tasks, seeds, 5-fold task CV (the fold models of
``benchmarks.meta_methods``) and metric, with part of the space fixed:

* ``lcbench``: ``batch_size``, ``num_layers`` and ``max_units`` are fixed at the values of one
  random configuration per (task, seed); the study tunes the other four parameters;
* ``rbv2_xgboost``: ``booster`` is fixed at ``gbtree`` (XGBoost's default); the study tunes the
  rest (``rate_drop`` and ``skip_drop`` are inactive then).

Regret after ``n`` trials is normalised per (task, seed) by the best and the worst of
:data:`N_REFERENCE` random configurations of the *same* subspace (floored at 0). Methods:

* ``meta``: ``MetaSampler(fold model, fixed_params=<the fixed values>)``;
* ``meta_untold``: the same sampler without ``fixed_params`` (the model's defaults assumed);
* ``tpe``, ``random``: Optuna's samplers.

Run (a few minutes on one core):
    .. code-block:: bash

        python -m benchmarks.fixed_params --seeds 0-4 --n-trials 50
        python -m benchmarks.fixed_params --scenario rbv2_xgboost
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._cli import add_setting_arguments, parse_ints, parse_methods, run_methods
from benchmarks._tables import regret_table
from benchmarks.objectives import get_surrogate, scored_tasks, suggest_value
from benchmarks.protocol import BenchContext, make_contexts, quiet_optuna, timed_ask_tell

RESULTS_DIR = Path(__file__).resolve().parent / "results"
METRIC = {"lcbench": "val_accuracy", "rbv2_xgboost": "acc"}
RANDOM_FIXED = {"lcbench": ("batch_size", "num_layers", "max_units"), "rbv2_xgboost": ()}
"""Parameters fixed at a random configuration's values (per task and seed)."""
CONSTANT_FIXED: dict[str, dict[str, Any]] = {"lcbench": {}, "rbv2_xgboost": {"booster": "gbtree"}}
"""Parameters fixed at one value everywhere."""
N_REFERENCE = 20_000
"""Random configurations of the subspace behind each (task, seed)'s normalisation."""
BUDGETS = (1, 2, 3, 5, 10, 20, 30, 50)


def fixed_values(scenario: str, task: str, seed: int) -> dict[str, Any]:
    """The values the (task, seed) run fixes, in the scenario's parameter names."""
    out = dict(CONSTANT_FIXED[scenario])
    names = RANDOM_FIXED[scenario]
    if names:
        rng = np.random.default_rng([seed, int(task)])
        config = get_surrogate(scenario).sample(1, rng)[0]
        out.update({k: config[k] for k in names})
    return out


def _tuned(surrogate: Any, fixed: dict[str, Any]) -> list[Any]:
    """The scenario's hyperparameters the study suggests (active given the fixed values)."""
    return [
        hp
        for hp in surrogate.spec.hyperparameters
        if hp.name not in fixed and surrogate.is_active(hp.name, fixed)
    ]


@functools.cache
def reference(scenario: str, task: str, seed: int) -> tuple[float, float]:
    """``(best, worst)`` metric of random configurations of the run's subspace."""
    surrogate = get_surrogate(scenario)
    fixed = fixed_values(scenario, task, seed)
    cols = surrogate.sample_columns(N_REFERENCE, np.random.default_rng([seed, int(task), 1]))
    for name, value in fixed.items():
        cols[name] = np.full(N_REFERENCE, value, dtype=cols[name].dtype)
    for hp in surrogate.spec.hyperparameters:  # inactive under the fixed values
        if hp.name not in fixed and not surrogate.is_active(hp.name, fixed):
            cols[hp.name] = np.full(N_REFERENCE, np.nan)
    acc = surrogate.evaluate(task, cols, outputs=[METRIC[scenario]])[METRIC[scenario]]
    return float(np.max(acc)), float(np.min(acc))


def _meta(ctx: BenchContext, tell: bool, **kwargs: Any) -> optuna.samplers.BaseSampler:
    from benchmarks.meta_methods import fold_model
    from optuna_meta import MetaSampler

    key = ("meta-model", ctx.scenario, ctx.train_tasks)
    if key not in ctx.cache:
        ctx.cache[key] = fold_model(ctx.scenario, ctx.train_tasks)
    fixed = fixed_values(ctx.scenario, ctx.task, ctx.seed) if tell else None
    return MetaSampler(model=ctx.cache[key], fixed_params=fixed, seed=ctx.seed, **kwargs)


METHODS: dict[str, Callable[[BenchContext], optuna.samplers.BaseSampler]] = {
    "meta": lambda ctx: _meta(ctx, True),
    "meta_untold": lambda ctx: _meta(ctx, False),
    # Session 15's fixed fallback schedule, the paired baseline of `adaptive_fallback`.
    "meta_fixedschedule": lambda ctx: _meta(ctx, True, adaptive_fallback=False, task_optima=False),
    # Session 18's design phase, the paired baseline of `task_optima` (session 19).
    "meta_notaskoptima": lambda ctx: _meta(ctx, True, task_optima=False),
    "tpe": lambda ctx: optuna.samplers.TPESampler(seed=ctx.seed),
    "random": lambda ctx: optuna.samplers.RandomSampler(seed=ctx.seed),
}


def run_one(ctx: BenchContext, method: str, n_trials: int) -> dict[str, Any]:
    surrogate = ctx.surrogate
    fixed = fixed_values(ctx.scenario, ctx.task, ctx.seed)
    tuned = _tuned(surrogate, fixed)
    study = optuna.create_study(direction="maximize", sampler=METHODS[method](ctx))
    metric = METRIC[ctx.scenario]
    values, ms = timed_ask_tell(
        study,
        n_trials,
        lambda trial: {hp.name: suggest_value(trial, hp.name, hp.distribution()) for hp in tuned},
        lambda _, params: surrogate.evaluate(ctx.task, [{**fixed, **params}], outputs=[metric])[
            metric
        ][0],
    )
    return {
        "task": ctx.task,
        "seed": ctx.seed,
        "scenario": ctx.scenario,
        "fixed": fixed,
        "values": values,
        "ms": ms,
    }


def regret_curve(run: dict[str, Any]) -> np.ndarray:
    """Normalised regret of the best trial after each trial, floored at 0."""
    top, worst = reference(run["scenario"], run["task"], run["seed"])
    best = np.maximum.accumulate(run["values"])
    return np.clip((top - best) / (top - worst), 0.0, 1.0)


def report(runs: dict[str, list[dict[str, Any]]], command: str, scenario: str) -> str:
    constant = (f"{k}={v}" for k, v in CONSTANT_FIXED[scenario].items())
    fixed = ", ".join([*RANDOM_FIXED[scenario], *constant])
    title = (
        f"{scenario} with fixed parameters ({fixed}; random values per task and seed where no "
        f"value is given), mean normalised regret against {N_REFERENCE:,} random "
        "configurations of the same subspace; 5-fold task CV for MetaSampler."
    )
    return regret_table(title, runs, regret_curve, BUDGETS, command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(parser, METRIC, METHODS)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    quiet_optuna()
    methods = parse_methods(parser, args.methods, METHODS)
    contexts = make_contexts(args.scenario, scored_tasks(args.scenario), parse_ints(args.seeds))
    runs = run_methods(methods, contexts, lambda ctx, m: run_one(ctx, m, args.n_trials))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "raw").mkdir(exist_ok=True)
    stem = f"fixed_params_{args.scenario}"
    raw = json.dumps({"runs": runs}, separators=(",", ":"))
    (args.out / "raw" / f"{stem}.json").write_text(raw)
    command = (
        "python -m benchmarks.fixed_params"
        + ("" if args.scenario == "lcbench" else f" --scenario {args.scenario}")
        + f" --seeds {args.seeds} --n-trials {args.n_trials}"
        + (f" --methods {args.methods}" if args.methods != ",".join(METHODS) else "")
    )
    text = report(runs, command, args.scenario)
    (args.out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
