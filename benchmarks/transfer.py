"""Tasks unlike the training tasks: what a misleading prior costs MetaSampler.

Why: a meta-learned sampler bets that the user's task resembles the tasks it was trained on.
When it does not (an MLP trained with AdamW, whose good learning rates are far lower than
SGD's; another model family that happens to share parameter names), the learned design and
prior point the wrong way, and the surrogate must unlearn them from the study's own trials.
This benchmark measures how fast it does, against samplers that assume nothing.

Protocol: the LCBench sampler protocol (34 tasks, seeds, 5-fold task CV with the fold models of
``benchmarks.meta_methods``), except that the objective *mirrors* some parameters before it
queries the surrogate: a parameter's value ``v`` in ``[lo, hi]`` is replaced by ``lo + hi - v``
(``lo * hi / v`` on a log scale; integers rounded). The study suggests the usual ranges, so the
sampler serves every parameter, but the landscape it meets is reflected:

* ``none``: nothing mirrored (the control; the plain protocol);
* ``lr``: the learning rate mirrored on its log scale: SGD's good learning rates near 0.1 become
  ones near 1e-4, much as when the optimiser changes from SGD to Adam;
* ``all``: all seven parameters mirrored: an adversarial task on which everything the model
  learned points the wrong way.

Mirroring keeps the log-uniform and uniform measures of the continuous parameters, so the
task's distribution of random configurations' values, and with it the shared normalisation
(``benchmarks/reference.py``), is nearly unchanged. Integer parameters are rounded after
mirroring; on a log scale that is not one-to-one (``batch_size``'s 497 values map to 150),
which coarsens the mirrored task's batch sizes a little.

Run (a few minutes on one core):
    .. code-block:: bash

        python -m benchmarks.transfer --seeds 0-4 --n-trials 100
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from benchmarks._cli import run_setting
from benchmarks._tables import regret_table
from benchmarks.objectives import suggest_value
from benchmarks.protocol import BenchContext, timed_ask_tell
from benchmarks.reference import shared_regret_curve

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCENARIO = "lcbench"
METRIC = "val_accuracy"
MIRRORED: dict[str, tuple[str, ...] | None] = {"none": (), "lr": ("learning_rate",), "all": None}
"""The parameters each mode mirrors (``None``: every one of the scenario's)."""
BUDGETS = (1, 3, 5, 10, 20, 30, 50, 100)


def mirror(value: float, dist: BaseDistribution) -> float:
    """``value`` reflected within ``dist``'s range (on its log scale when it has one)."""
    if not isinstance(dist, (FloatDistribution, IntDistribution)):
        raise TypeError(f"Only numerical parameters are mirrored, got {dist!r}.")
    lo, hi = float(dist.low), float(dist.high)
    v = lo * hi / value if dist.log else lo + hi - value
    v = min(max(v, lo), hi)
    return round(v) if isinstance(dist, IntDistribution) else v


def mirrored_config(
    params: Mapping[str, Any], space: Mapping[str, BaseDistribution], names: tuple[str, ...]
) -> dict[str, Any]:
    """The configuration the mirrored task evaluates for the study's ``params``."""
    return {k: mirror(v, space[k]) if k in names else v for k, v in params.items()}


def _meta(ctx: BenchContext, **kwargs: Any) -> optuna.samplers.BaseSampler:
    from benchmarks.meta_methods import fold_model
    from optuna_meta import MetaSampler

    key = ("meta-model", ctx.scenario, ctx.train_tasks)
    if key not in ctx.cache:
        ctx.cache[key] = fold_model(ctx.scenario, ctx.train_tasks)
    return MetaSampler(model=ctx.cache[key], seed=ctx.seed, **kwargs)


METHODS: dict[str, Callable[[BenchContext], optuna.samplers.BaseSampler]] = {
    "meta": _meta,
    # Session 15's fixed fallback schedule, the paired baseline of `adaptive_fallback`.
    "meta_fixedschedule": lambda ctx: _meta(ctx, adaptive_fallback=False, task_optima=False),
    # Session 18's design phase, the paired baseline of `task_optima` (session 19).
    "meta_notaskoptima": lambda ctx: _meta(ctx, task_optima=False),
    # The README's advice for a task unlike the model's (session 34).
    "meta_nodesign": lambda ctx: _meta(ctx, n_design_trials=0),
    "tpe": lambda ctx: optuna.samplers.TPESampler(seed=ctx.seed),
    "random": lambda ctx: optuna.samplers.RandomSampler(seed=ctx.seed),
}


def run_one(ctx: BenchContext, method: str, mode: str, n_trials: int) -> dict[str, Any]:
    surrogate = ctx.surrogate
    space = {hp.name: hp.distribution() for hp in surrogate.spec.hyperparameters}
    names = MIRRORED[mode]
    mirrored = tuple(space) if names is None else names
    study = optuna.create_study(direction="maximize", sampler=METHODS[method](ctx))
    values, ms = timed_ask_tell(
        study,
        n_trials,
        lambda trial: {name: suggest_value(trial, name, dist) for name, dist in space.items()},
        lambda _, params: surrogate.evaluate(
            ctx.task, [mirrored_config(params, space, mirrored)], outputs=[METRIC]
        )[METRIC][0],
    )
    return {"task": ctx.task, "seed": ctx.seed, "mode": mode, "values": values, "ms": ms}


def report(runs: dict[str, list[dict[str, Any]]], mode: str, command: str) -> str:
    names = MIRRORED[mode]
    mirrored = "all seven" if names is None else ", ".join(names) or "nothing (control)"
    title = (
        f"LCBench with mirrored parameters ({mirrored}), mean normalised regret (the shared "
        "per-task normalisation); 5-fold task CV for MetaSampler."
    )
    return regret_table(title, runs, shared_regret_curve(SCENARIO), BUDGETS, command)


def main() -> None:
    description = __doc__.splitlines()[0]
    run_setting(
        "transfer",
        description,
        "modes",
        MIRRORED,
        METHODS,
        run_one,
        report,
        RESULTS_DIR,
        n_trials=100,
    )


if __name__ == "__main__":
    main()
