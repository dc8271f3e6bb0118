"""Benchmark objectives on the YAHPO Gym surrogates (see ``shared/README.md``).

Three objectives, all maximised:

* ``lcbench`` final: ``val_accuracy`` (percent) at epoch 52 over LCBench's 7 hyperparameters;
* ``lcbench`` multi-fidelity: the same, reported epoch by epoch (1..52) through
  ``trial.report`` / ``trial.should_prune``; the whole curve is computed in one ONNX call at the
  start of the trial (:func:`evaluate_curve`);
* ``rbv2_xgboost``: ``acc`` at ``trainsize`` 1 over the conditional XGBoost space (``booster`` is
  suggested first, then only the parameters that are active for it).

The suggestion order is the order of ``YahpoSurrogate.spec.hyperparameters`` and a parameter is
suggested only when it is active given the ones before it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_meta.data import TEST_INSTANCES, YahpoSurrogate


@dataclass(frozen=True)
class ScenarioConfig:
    """What a benchmark scenario optimises."""

    name: str
    output: str
    n_epochs: int | None = None  # multi-fidelity steps (LCBench: 52), None without an epoch axis


SCENARIO_CONFIGS: dict[str, ScenarioConfig] = {
    "lcbench": ScenarioConfig("lcbench", "val_accuracy", n_epochs=52),
    "rbv2_xgboost": ScenarioConfig("rbv2_xgboost", "acc"),
}

RBV2_SUBSET_STRIDE = 4
RBV2_SUBSET_EXTRA = 26


@functools.cache
def get_surrogate(scenario: str) -> YahpoSurrogate:
    """One shared :class:`YahpoSurrogate` per scenario and process."""
    return YahpoSurrogate(scenario)


def all_tasks(scenario: str) -> list[str]:
    """Every task of the scenario, sorted numerically."""
    return sorted(get_surrogate(scenario).tasks, key=int)


def scored_tasks(scenario: str) -> list[str]:
    """The tasks a benchmark run scores methods on.

    * ``lcbench``: all 34 tasks.
    * ``rbv2_xgboost``: a fixed subset of 30 of the 119 tasks: YAHPO's 4 test instances
      (12, 1501, 16, 40499) plus, from the other 115 tasks sorted by numeric id, every 4th one
      starting with the first (indices 0, 4, ..., 100: 26 tasks).
    """
    tasks = all_tasks(scenario)
    if scenario != "rbv2_xgboost":
        return tasks
    test = list(TEST_INSTANCES[scenario])
    others = [t for t in tasks if t not in test]
    picked = others[::RBV2_SUBSET_STRIDE][:RBV2_SUBSET_EXTRA]
    return sorted(test + picked, key=int)


def suggest_value(trial: optuna.trial.BaseTrial, name: str, dist: BaseDistribution) -> Any:
    """Suggest one parameter through the public ``trial.suggest_*`` API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    raise TypeError(f"Unsupported distribution {dist!r}.")


def suggest_config(trial: optuna.trial.BaseTrial, surrogate: YahpoSurrogate) -> dict[str, Any]:
    """Suggest a configuration of the scenario: parents first, inactive parameters skipped."""
    params: dict[str, Any] = {}
    for hp in surrogate.spec.hyperparameters:
        if surrogate.is_active(hp.name, params):
            params[hp.name] = suggest_value(trial, hp.name, hp.distribution())
    return params


def evaluate_final(
    surrogate: YahpoSurrogate, task: str, params: Mapping[str, Any], output: str
) -> float:
    """The scenario's metric of one configuration at full fidelity."""
    return float(surrogate.evaluate(task, [params], outputs=[output])[output][0])


def evaluate_curve(
    surrogate: YahpoSurrogate, task: str, params: Mapping[str, Any], output: str
) -> np.ndarray:
    """The learning curve (epochs 1..52) of one configuration, in one ONNX call."""
    return surrogate.curves(task, [params], output=output)[0]


class FinalObjective:
    """``objective(trial) -> float`` for ``study.optimize``: the final metric of a task.

    ``eval_seconds`` accumulates the time spent inside the surrogate.
    """

    def __init__(self, scenario: str, task: str) -> None:
        self.scenario = scenario
        self.task = str(task)
        self.surrogate = get_surrogate(scenario)
        self.output = SCENARIO_CONFIGS[scenario].output
        self.eval_seconds = 0.0

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        params = suggest_config(trial, self.surrogate)
        t0 = time.perf_counter()
        value = evaluate_final(self.surrogate, self.task, params, self.output)
        self.eval_seconds += time.perf_counter() - t0
        return value


class MultiFidelityObjective:
    """LCBench objective that reports ``val_accuracy`` at every epoch and may be pruned.

    ``epochs_spent`` counts every reported epoch (of pruned trials too); the objective raises
    :class:`optuna.TrialPruned` when ``trial.should_prune()`` says so.
    """

    def __init__(self, task: str, scenario: str = "lcbench") -> None:
        cfg = SCENARIO_CONFIGS[scenario]
        if cfg.n_epochs is None:
            raise ValueError(f"{scenario} has no epoch axis.")
        self.task = str(task)
        self.surrogate = get_surrogate(scenario)
        self.output = cfg.output
        self.n_epochs = cfg.n_epochs
        self.epochs_spent = 0

    def __call__(self, trial: optuna.trial.Trial) -> float:
        params = suggest_config(trial, self.surrogate)
        curve = evaluate_curve(self.surrogate, self.task, params, self.output)
        for epoch in range(1, self.n_epochs + 1):
            trial.report(float(curve[epoch - 1]), epoch)
            self.epochs_spent += 1
            if epoch < self.n_epochs and trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])


Objective = Callable[[optuna.trial.Trial], float]
