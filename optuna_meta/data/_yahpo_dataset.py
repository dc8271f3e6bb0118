"""Meta-datasets sampled from the YAHPO Gym surrogates.

:func:`load_yahpo` draws random configurations per task and queries the scenario's ONNX
surrogate (:class:`~optuna_meta.data.YahpoSurrogate`) in a few vectorised calls per task.

================  ===============  =============================================================
scenario          objective        curve (``steps`` -> fidelity)
================  ===============  =============================================================
``lcbench``       ``val_accuracy`` step ``e`` = epoch ``e``, ``e = 1..52``; value = epoch 52.
                  (percent,        A real learning curve.
                  maximise)
``rbv2_xgboost``  ``acc``          step ``k`` = ``trainsize = k / 10``, ``k = 1..10``; value =
                  (0..1,           trainsize 1.0. A curve over the fraction of training data,
                  maximise)        not over training time; ``repl`` is fixed to 1.
================  ===============  =============================================================

Surrogate predictions are clipped to the metric's range (``[0, 100]`` and ``[0, 1]``), so the
value is exactly the curve's last column. Parameters are in the scenario's raw units: ints as
``int``, conditional parameters of ``rbv2_xgboost`` absent when inactive. Tasks are named
``"<scenario>/<OpenML task id>"`` with meta-features ``{"scenario": ..., "openml_task_id": ...}``
(both strings). YAHPO's test instances (:data:`~optuna_meta.data.TEST_INSTANCES`) are left out
by default: they must never enter the training data of a shipped model.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_meta.data._dataset import MetaDataset, TaskData
from optuna_meta.data._yahpo import Hyperparameter, YahpoSurrogate, configs_to_columns


@dataclass(frozen=True)
class _Setup:
    objective: str
    fidelities: tuple[float, ...]
    steps: tuple[int, ...]
    bounds: tuple[float, float]


_ROWS_PER_CALL = 2048  # onnxruntime is ~1.5x faster on batches of this size than on 50k rows

_SETUPS: dict[str, _Setup] = {
    "lcbench": _Setup(
        "val_accuracy", tuple(float(e) for e in range(1, 53)), tuple(range(1, 53)), (0.0, 100.0)
    ),
    "rbv2_xgboost": _Setup(
        "acc", tuple(k / 10 for k in range(1, 11)), tuple(range(1, 11)), (0.0, 1.0)
    ),
}


def load_yahpo(
    scenario: str,
    n_configs: int = 1000,
    *,
    tasks: Sequence[str] | None = None,
    exclude_test_instances: bool = True,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    fidelity_curves: bool = True,
    shared_configs: bool = False,
) -> MetaDataset:
    """Sample ``n_configs`` random configurations per task of a YAHPO scenario.

    Args:
        scenario: ``"lcbench"`` or ``"rbv2_xgboost"`` (objectives and curves: module doc).
        n_configs: Configurations (trials) per task, drawn uniformly (log-uniformly for log
            parameters) by :meth:`YahpoSurrogate.sample_columns`.
        tasks: OpenML task ids (strings) to load, in this order; default: all of the scenario.
        exclude_test_instances: Leave out YAHPO's test instances. Asking for one explicitly in
            ``tasks`` while this is true raises ValueError.
        seed: Each task's generator is seeded with ``(seed, task id)``: a task gets the same
            configurations whatever other tasks are loaded.
        data_dir: The YAHPO folder; defaults to :func:`~optuna_meta.data.default_yahpo_dir`.
        fidelity_curves: Also query the curve (``steps``/``curves``); if false, only the final
            value is computed and the tasks have no steps.
        shared_configs: Evaluate the same configurations (drawn from ``seed``) on every task, as
            in a tabular benchmark, instead of fresh ones per task.
    """
    if scenario not in _SETUPS:
        raise ValueError(f"Unknown YAHPO scenario {scenario!r}; known: {sorted(_SETUPS)}.")
    if n_configs < 0:
        raise ValueError(f"n_configs must be >= 0, got {n_configs}.")
    setup = _SETUPS[scenario]
    bench = YahpoSurrogate(scenario, data_dir)
    known = bench.tasks
    held_out = set(bench.test_instances)
    if tasks is None:
        selected = [t for t in known if not (exclude_test_instances and t in held_out)]
    else:
        selected = [str(t) for t in tasks]
        unknown = [t for t in selected if t not in known]
        if unknown:
            raise ValueError(f"Tasks {unknown} are not {scenario} tasks.")
        if exclude_test_instances and held_out.intersection(selected):
            raise ValueError(
                f"Tasks {sorted(held_out.intersection(selected))} are YAHPO test instances; "
                "pass exclude_test_instances=False to load them (Python API only: they never "
                "train a model)."
            )
        if len(set(selected)) != len(selected):
            raise ValueError("tasks contains duplicates.")
    space = bench.search_space()
    direction = (
        StudyDirection.MAXIMIZE
        if bench.spec.maximize[setup.objective]
        else StudyDirection.MINIMIZE
    )
    shared = _sample(bench, n_configs, np.random.default_rng(seed)) if shared_configs else None
    out = []
    for task in selected:
        if shared is not None:
            columns, params = shared
        else:
            columns, params = _sample(
                bench, n_configs, np.random.default_rng([seed, _task_key(task)])
            )
        if fidelity_curves:
            curves = np.clip(_query(bench, task, columns, setup, curves=True), *setup.bounds)
            values = curves[:, -1].copy()
        else:
            values = np.clip(_query(bench, task, columns, setup, curves=False), *setup.bounds)
            curves = np.empty((n_configs, 0))
        out.append(
            TaskData(
                name=f"{scenario}/{task}",
                search_space=dict(space),
                params=[dict(p) for p in params] if shared is not None else params,
                values=values,
                states=np.full(n_configs, TrialState.COMPLETE.value, dtype=np.int8),
                steps=np.asarray(setup.steps if fidelity_curves else (), dtype=np.int64),
                curves=curves,
                direction=direction,
                meta_features={"scenario": scenario, "openml_task_id": task},
                objective=setup.objective,
            )
        )
    return MetaDataset(out)


class YahpoObjective:
    """The final objective of a YAHPO scenario's tasks, callable as ``f(task_name, configs)``.

    Meta-training uses it to learn a model's initial design on the training tasks
    (``build_model(data, design_objective=yahpo_objective("lcbench"))``). Tasks are named as in
    :func:`load_yahpo` (``"lcbench/3945"``); values are clipped to the metric's range like
    the dataset's, inactive conditional parameters are dropped. Querying a YAHPO test instance
    raises ValueError unless ``exclude_test_instances=False``: they never train a shipped model.
    With ``budgets`` (fidelity values, e.g. LCBench epochs ``(5, 52)``) it returns the objective
    at each of them, shape ``(n_configs, len(budgets))``, and a learned design then serves every
    budget (:func:`~optuna_meta.surrogate._design.learn_initial_design`).
    The conversion of the last batch of configurations is kept and reused while an equal batch
    is asked again (a design asks every training task about the same batch in turn).
    """

    def __init__(
        self,
        scenario: str,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        exclude_test_instances: bool = True,
        budgets: Sequence[float] | None = None,
    ) -> None:
        if scenario not in _SETUPS:
            raise ValueError(f"Unknown YAHPO scenario {scenario!r}; known: {sorted(_SETUPS)}.")
        self.scenario = scenario
        self.data_dir = data_dir
        self.exclude_test_instances = exclude_test_instances
        if budgets is not None and (
            len(budgets) == 0 or not all(b > 0 and math.isfinite(b) for b in budgets)
        ):
            raise ValueError(f"budgets must be positive finite fidelities, got {budgets!r}.")
        self.budgets = budgets
        self._bench: YahpoSurrogate | None = None
        self._columns: tuple[list[dict[str, Any]], dict[str, np.ndarray]] | None = None

    def __call__(self, task_name: str, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if self._bench is None:
            self._bench = YahpoSurrogate(self.scenario, self.data_dir)
        bench, setup = self._bench, _SETUPS[self.scenario]
        prefix = f"{self.scenario}/"
        task = task_name[len(prefix) :] if task_name.startswith(prefix) else task_name
        if self.exclude_test_instances and task in bench.test_instances:
            raise ValueError(
                f"Task {task} is a YAHPO test instance; it must not train a model "
                "(pass exclude_test_instances=False to query it anyway)."
            )
        if not configs:
            return np.empty(0)
        memo = self._columns  # learning a design asks every task about the same configurations
        if memo is None or memo[0] != configs:
            active = [{k: v for k, v in c.items() if bench.is_active(k, c)} for c in configs]
            names = [h.name for h in bench.spec.hyperparameters]
            memo = ([dict(c) for c in configs], configs_to_columns(active, names))
            self._columns = memo
        if self.budgets is None:
            return np.clip(_query(bench, task, memo[1], setup, curves=False), *setup.bounds)
        values = bench.curves(task, memo[1], setup.objective, [float(b) for b in self.budgets])
        return np.clip(values, *setup.bounds)


yahpo_objective = YahpoObjective
"""The lower-case spelling used beside :func:`load_yahpo`: ``yahpo_objective("lcbench")``."""


def _query(
    bench: YahpoSurrogate,
    task: str,
    columns: Mapping[str, np.ndarray],
    setup: _Setup,
    *,
    curves: bool,
) -> np.ndarray:
    """The objective's curves ``(n, T)`` or final values ``(n,)``, ~2k surrogate rows a call."""
    n = len(next(iter(columns.values())))
    size = max(1, _ROWS_PER_CALL // (len(setup.fidelities) if curves else 1))
    parts = []
    for start in range(0, n, size):
        chunk = {k: v[start : start + size] for k, v in columns.items()}
        if curves:
            parts.append(bench.curves(task, chunk, setup.objective, setup.fidelities))
        else:
            parts.append(bench.evaluate(task, chunk, outputs=[setup.objective])[setup.objective])
    if not parts:
        return np.empty((0, len(setup.fidelities)) if curves else 0)
    return np.concatenate(parts)


def _task_key(task: str) -> int:
    return int(task) if task.isdigit() else zlib.crc32(task.encode("utf-8"))


def _sample(
    bench: YahpoSurrogate, n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Columns for the surrogate and the matching Optuna params (clipped into the space)."""
    columns = bench.sample_columns(n, rng)
    for hp in bench.spec.hyperparameters:
        if hp.kind != "categorical":  # exp(log(high)) may overshoot `high` by one ulp
            columns[hp.name] = np.clip(columns[hp.name], hp.low, hp.high)  # NaN stays NaN
    return columns, _params(columns, bench.spec.hyperparameters, n)


def _params(
    columns: Mapping[str, np.ndarray], hps: Sequence[Hyperparameter], n: int
) -> list[dict[str, Any]]:
    per: list[tuple[str, list[Any], list[bool]]] = []
    for hp in hps:
        col = columns[hp.name]
        if hp.kind == "categorical":
            vals: list[Any] = [None if v is None else str(v) for v in col.tolist()]
            present = [v is not None for v in vals]
        else:
            arr = np.asarray(col, dtype=np.float64)
            mask = ~np.isnan(arr)
            filled = np.where(mask, arr, hp.low)
            vals = filled.astype(np.int64).tolist() if hp.kind == "int" else filled.tolist()
            present = mask.tolist()
        per.append((hp.name, vals, present))
    return [{name: vals[i] for name, vals, present in per if present[i]} for i in range(n)]
