"""Studies that suggest parameters the model does not know, before or after the known ones.

Why: a user's MLP script often tunes things the LCBench model never saw (the activation, label
smoothing) beside the ones it knows. The surrogate serves the known names and the fallback the
rest, but the first trial must decide, name by name, while the study's other names are still
to come: the coverage rule (``MIN_KNOWN_PARAMS``) cannot yet tell an MLP study that asks two
unknown names first from an XGBoost study whose only name the model knows comes third
(``benchmarks.meta_methods.SHIPPED_ON_OTHER_SCENARIO`` measures that one). This benchmark
measures what the first trials cost in the MLP case.

Protocol: the LCBench sampler protocol (34 tasks, seeds, 5-fold task CV with the fold models of
``benchmarks.meta_methods``). The study suggests :data:`UNKNOWN` (two parameters no shipped
model knows, which do not change the objective) and LCBench's seven parameters:

* ``first``: the two unknown names before the seven known ones;
* ``last``: after them (the control: the first known name is asked with no unknown one yet).

The known names are asked ``learning_rate`` first, the parameter that matters most on LCBench:
the one whose value the first trial's rule decides while too few known names are in sight.

Run (a few minutes on one core):
    .. code-block:: bash

        python -m benchmarks.unknown_params --seeds 0-4 --n-trials 50
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from benchmarks._cli import run_setting
from benchmarks._tables import regret_table
from benchmarks.objectives import suggest_value
from benchmarks.protocol import BenchContext, timed_ask_tell
from benchmarks.reference import shared_regret_curve
from benchmarks.transfer import METHODS as TRANSFER_METHODS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCENARIO = "lcbench"
METRIC = "val_accuracy"
UNKNOWN: dict[str, BaseDistribution] = {
    "activation": CategoricalDistribution(["relu", "tanh", "gelu"]),
    "label_smoothing": FloatDistribution(0.0, 0.2),
}
"""Parameters no shipped model knows; the objective ignores them."""
FIRST_KNOWN = "learning_rate"
ORDERS = ("first", "last")
"""Where the study suggests :data:`UNKNOWN`: before or after the known parameters."""
METHODS = {m: TRANSFER_METHODS[m] for m in ("meta", "tpe", "random")}
BUDGETS = (1, 2, 3, 5, 10, 20, 30, 50)


def run_one(ctx: BenchContext, method: str, order: str, n_trials: int) -> dict[str, Any]:
    surrogate = ctx.surrogate
    known = {hp.name: hp.distribution() for hp in surrogate.spec.hyperparameters}
    known = {FIRST_KNOWN: known.pop(FIRST_KNOWN), **known}
    space = {**UNKNOWN, **known} if order == "first" else {**known, **UNKNOWN}
    study = optuna.create_study(direction="maximize", sampler=METHODS[method](ctx))
    values, ms = timed_ask_tell(
        study,
        n_trials,
        lambda trial: {name: suggest_value(trial, name, dist) for name, dist in space.items()},
        lambda _, params: surrogate.evaluate(
            ctx.task, [{k: params[k] for k in known}], outputs=[METRIC]
        )[METRIC][0],
    )
    sources = [t.user_attrs.get("optuna_meta:source") for t in study.trials]
    return {"task": ctx.task, "seed": ctx.seed, "values": values, "ms": ms, "sources": sources}


def report(runs: dict[str, list[dict[str, Any]]], order: str, command: str) -> str:
    title = (
        f"LCBench with two parameters the model does not know suggested {order} "
        f"({', '.join(UNKNOWN)}; the objective ignores them), mean normalised regret (the "
        "shared per-task normalisation); 5-fold task CV for MetaSampler."
    )
    return regret_table(title, runs, shared_regret_curve(SCENARIO), BUDGETS, command)


def main() -> None:
    description = __doc__.splitlines()[0]
    run_setting(
        "unknown_params", description, "orders", ORDERS, METHODS, run_one, report, RESULTS_DIR
    )


if __name__ == "__main__":
    main()
