"""The in-memory meta-dataset: many past tasks, each a table of trials.

A :class:`MetaDataset` is an ordered collection of :class:`TaskData` with unique names. One task
is one past HPO run (an Optuna study, or one benchmark instance): its search space, and one row
per trial. The layout follows Syne Tune's blackbox repository (configurations x fidelities x
objectives per task), with one change so that Optuna studies fit: trials are rows, not grid
points, so conditional spaces (inactive parameters are absent) and repeated evaluations of one
configuration (repeated rows) need nothing special.

Per task, with ``n`` trials and ``T`` reported steps:

=================  ====================  ========================================================
field              type                  meaning
=================  ====================  ========================================================
``name``           ``str``               unique within a dataset (study name, ``"lcbench/3945"``)
``search_space``   ``dict[str, Dist]``   Optuna distribution of every parameter that can appear
``params``         ``list[dict]``        per trial, in external representation; inactive
                                         parameters are absent from the dict
``values``         ``(n,) float64``      final objective; NaN exactly when the state is not
                                         COMPLETE; ``+-inf`` allowed
``states``         ``(n,) int8``         :class:`optuna.trial.TrialState` values: COMPLETE (1),
                                         PRUNED (2) or FAIL (3)
``steps``          ``(T,) int64``        sorted union of the reported steps (may be empty)
``curves``         ``(n, T) float64``    intermediate values; NaN where not reported
``direction``      ``StudyDirection``    MINIMIZE or MAXIMIZE (strings accepted)
``meta_features``  ``dict[str, float|str]``  optional task descriptors
``objective``      ``str``               name of the objective (default ``"value"``)
``feasible``       ``(n,) bool`` or None  per trial, whether it met the study's constraints
                                         (``trial.set_constraint`` or a sampler's
                                         ``constraints_func``); None: no constraints
=================  ====================  ========================================================

Numbers keep the user's direction; :attr:`TaskData.sign` (+1 maximise, -1 minimise) turns any
of them into "larger is better". Pruned trials have no final value; :meth:`TaskData.final_values`
substitutes the last reported intermediate value.

On disk (:meth:`MetaDataset.save` / :meth:`MetaDataset.load`) a dataset is ONE ``.npz`` file
read with ``allow_pickle=False``. It holds ``manifest`` (UTF-8 JSON as a ``uint8`` array:
``{"format": "optuna-meta/meta-dataset", "version": 1, "tasks": [...]}`` where each task entry
has its name, direction, objective, meta-features, parameter names and the search space through
:func:`optuna.distributions.distribution_to_json`) and, for task ``i``, the arrays
``t{i}.values``, ``t{i}.states``, ``t{i}.steps``, ``t{i}.curves``, ``t{i}.params`` and, for a
task with constraints, ``t{i}.feasible``. The params array is an ``(n, p)`` float64 matrix of
Optuna's internal representation (categorical: index of the choice) with NaN for absent
parameters, in the order of the manifest's ``param_names``.

Example:
    .. code-block:: python

        import numpy as np
        from optuna.distributions import CategoricalDistribution, FloatDistribution
        from optuna.trial import TrialState
        from optuna_meta.data import MetaDataset, TaskData

        task = TaskData(
            name="svm-on-iris",
            search_space={
                "kernel": CategoricalDistribution(["rbf", "linear"]),
                "gamma": FloatDistribution(1e-4, 1.0, log=True),  # only for "rbf"
            },
            params=[{"kernel": "rbf", "gamma": 0.01}, {"kernel": "linear"}],
            values=np.array([0.93, np.nan]),
            states=np.array([TrialState.COMPLETE, TrialState.PRUNED], dtype=np.int8),
            steps=np.array([1, 2]),
            curves=np.array([[0.80, 0.93], [0.41, np.nan]]),
            direction="maximize",
            meta_features={"n_samples": 150.0, "source": "sklearn"},
        )
        data = MetaDataset([task])
        data.save("meta.npz")
        assert MetaDataset.load("meta.npz") == data
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, overload

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.study import StudyDirection
from optuna.trial import TrialState

FORMAT_NAME = "optuna-meta/meta-dataset"
"""The ``format`` field of the manifest of a saved :class:`MetaDataset`."""

FORMAT_VERSION = 1
"""The ``version`` field of the manifest written by this release (the only one it reads)."""

_FINISHED_STATES = (TrialState.COMPLETE.value, TrialState.PRUNED.value, TrialState.FAIL.value)
_ARRAYS = ("values", "states", "steps", "curves", "params")


class TrialRecord(NamedTuple):
    """One trial of a :class:`TaskData`, as yielded by :meth:`TaskData.trials`."""

    index: int
    params: dict[str, Any]
    value: float
    state: TrialState
    intermediate_values: dict[int, float]


def _direction(direction: StudyDirection | str) -> StudyDirection:
    if isinstance(direction, StudyDirection):
        d = direction
    elif isinstance(direction, str) and direction.upper() in ("MINIMIZE", "MAXIMIZE"):
        d = StudyDirection[direction.upper()]
    else:
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
    if d == StudyDirection.NOT_SET:
        raise ValueError("direction must be MINIMIZE or MAXIMIZE, not NOT_SET.")
    return d


def _meta_features(name: str, features: Mapping[str, Any]) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for key, value in features.items():
        if not isinstance(key, str):
            raise ValueError(f"Task {name!r}: meta-feature names must be str, got {key!r}.")
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (int, float, np.integer, np.floating)):  # bool is an int
            out[key] = float(value)
        else:
            raise ValueError(
                f"Task {name!r}: meta-feature {key!r} must be a number or a str, got "
                f"{type(value).__name__}."
            )
    return out


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (for floats and float arrays)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
            return False
        if a.dtype.kind == "f":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@dataclass(eq=False)
class TaskData:
    """All trials of one past task; see the module docstring for the meaning of each field.

    Arrays are coerced to their documented dtypes (``states`` may be given as
    :class:`~optuna.trial.TrialState` members; ``steps``/``curves`` may be ``None`` for a task
    without intermediate values) and every shape and invariant is checked: a violation raises a
    :class:`ValueError` naming the task and the field.
    """

    name: str
    search_space: dict[str, BaseDistribution]
    params: list[dict[str, Any]]
    values: np.ndarray
    states: np.ndarray
    steps: np.ndarray
    curves: np.ndarray
    direction: StudyDirection
    meta_features: dict[str, float | str] = field(default_factory=dict)
    objective: str = "value"
    feasible: np.ndarray | None = None

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name:
            raise ValueError(f"Task name must be a non-empty str, got {name!r}.")
        where = f"Task {name!r}"
        self.search_space = dict(self.search_space)
        for key, dist in self.search_space.items():
            if not isinstance(dist, BaseDistribution):
                raise ValueError(
                    f"{where}: search_space[{key!r}] must be an Optuna distribution, got "
                    f"{type(dist).__name__}."
                )
        self.params = list(self.params)
        n = len(self.params)
        if not all(isinstance(p, dict) for p in self.params):
            raise ValueError(f"{where}: params must be a list of dicts (one per trial).")
        unknown = set().union(*self.params) - self.search_space.keys() if n else set()
        if unknown:
            raise ValueError(f"{where}: parameters {sorted(unknown)} are not in search_space.")

        states = self.states
        if len(states) and isinstance(states[0], TrialState):
            states = [s.value for s in states]
        self.states = np.asarray(states, dtype=np.int8).reshape(-1)
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.shape != (n,):
            raise ValueError(f"{where}: values has shape {self.values.shape}, expected ({n},).")
        if self.states.shape != (n,):
            raise ValueError(f"{where}: states has shape {self.states.shape}, expected ({n},).")
        if not np.isin(self.states, _FINISHED_STATES).all():
            raise ValueError(
                f"{where}: states must be COMPLETE (1), PRUNED (2) or FAIL (3); got "
                f"{sorted(set(self.states.tolist()) - set(_FINISHED_STATES))}."
            )
        complete = self.states == TrialState.COMPLETE.value
        if np.isnan(self.values[complete]).any():
            raise ValueError(f"{where}: COMPLETE trials must have a (non-NaN) value.")
        if not np.isnan(self.values[~complete]).all():
            raise ValueError(f"{where}: values must be NaN for PRUNED and FAIL trials.")

        steps = np.asarray([] if self.steps is None else self.steps)
        if steps.ndim != 1:
            raise ValueError(f"{where}: steps must be 1-D, got shape {steps.shape}.")
        if steps.size and not np.issubdtype(steps.dtype, np.integer):
            if not np.all(steps == np.round(steps)):
                raise ValueError(f"{where}: steps must be integers.")
        self.steps = steps.astype(np.int64)
        if np.any(np.diff(self.steps) <= 0):
            raise ValueError(f"{where}: steps must be strictly increasing.")
        t = len(self.steps)
        curves = np.empty((n, 0)) if self.curves is None else self.curves
        self.curves = np.asarray(curves, dtype=np.float64)
        if self.curves.shape != (n, t):
            raise ValueError(
                f"{where}: curves has shape {self.curves.shape}, expected ({n}, {t})."
            )
        self.direction = _direction(self.direction)
        self.meta_features = _meta_features(name, self.meta_features or {})
        if not isinstance(self.objective, str) or not self.objective:
            raise ValueError(f"{where}: objective must be a non-empty str.")
        if self.feasible is not None:
            feasible = np.asarray(self.feasible)
            if feasible.shape != (n,) or not (
                feasible.dtype == bool or np.isin(feasible, (0, 1)).all()
            ):
                raise ValueError(
                    f"{where}: feasible must be None or {n} booleans, got shape "
                    f"{feasible.shape} of {feasible.dtype}."
                )
            self.feasible = feasible.astype(bool)

    # -- properties ---------------------------------------------------------------------------
    @property
    def n_trials(self) -> int:
        return len(self.params)

    @property
    def complete_mask(self) -> np.ndarray:
        """Boolean mask of the COMPLETE trials."""
        return self.states == TrialState.COMPLETE.value

    @property
    def sign(self) -> float:
        """+1.0 for maximisation, -1.0 for minimisation: ``sign * values`` is larger-is-better."""
        return 1.0 if self.direction == StudyDirection.MAXIMIZE else -1.0

    @property
    def best_value(self) -> float:
        """Best value among the COMPLETE trials (NaN when there is none)."""
        v = self.values[self.complete_mask]
        if v.size == 0:
            return math.nan
        return float(v.max() if self.sign > 0 else v.min())

    # -- views --------------------------------------------------------------------------------
    def final_values(self, use_curves: bool = True) -> np.ndarray:
        """A copy of ``values``; with ``use_curves``, PRUNED trials get their last reported value.

        FAIL trials, and PRUNED trials without any reported value, stay NaN.
        """
        out = self.values.copy()
        if not use_curves or self.curves.shape[1] == 0:
            return out
        reported = ~np.isnan(self.curves)
        t = self.curves.shape[1]
        last = t - 1 - np.argmax(reported[:, ::-1], axis=1)
        fill = (self.states == TrialState.PRUNED.value) & reported.any(axis=1)
        out[fill] = self.curves[fill, last[fill]]
        return out

    def to_arrays(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Parameter matrix ``(n_trials, len(names))`` in Optuna's internal representation.

        Floats and ints as float64, categoricals as the index of the choice, NaN where the
        parameter is absent. ``names`` defaults to the order of ``search_space``.
        """
        names = list(self.search_space) if names is None else list(names)
        out = np.full((self.n_trials, len(names)), np.nan)
        for j, name in enumerate(names):
            if name not in self.search_space:
                raise KeyError(f"Task {self.name!r} has no parameter {name!r}.")
            dist = self.search_space[name]
            col = [p.get(name) for p in self.params]
            present = [i for i, p in enumerate(self.params) if name in p]
            if isinstance(dist, CategoricalDistribution):
                codes: dict[tuple[type, Any], float] = {}
                for i in present:
                    v = col[i]
                    key = (type(v), v)
                    if key not in codes:
                        try:
                            codes[key] = float(dist.to_internal_repr(v))
                        except ValueError:
                            raise ValueError(
                                f"Task {self.name!r}: value {v!r} of {name!r} is not one of "
                                f"the choices {dist.choices}."
                            ) from None
                    out[i, j] = codes[key]
            else:
                out[present, j] = [float(col[i]) for i in present]
        return out

    def subset(self, idx: Sequence[int] | np.ndarray) -> TaskData:
        """A new task with the trials ``idx`` (integer indices or a boolean mask)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (self.n_trials,):
                raise ValueError(
                    f"Boolean mask of shape {idx.shape}, expected ({self.n_trials},)."
                )
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        return TaskData(
            name=self.name,
            search_space=dict(self.search_space),
            params=[dict(self.params[i]) for i in idx],
            values=self.values[idx],
            states=self.states[idx],
            steps=self.steps.copy(),
            curves=self.curves[idx],
            direction=self.direction,
            meta_features=dict(self.meta_features),
            objective=self.objective,
            feasible=None if self.feasible is None else self.feasible[idx],
        )

    def trials(self) -> Iterator[TrialRecord]:
        """Iterate over the trials as :class:`TrialRecord` (intermediate values without NaN)."""
        steps = self.steps.tolist()
        for i in range(self.n_trials):
            row = self.curves[i]
            inter = {s: float(v) for s, v in zip(steps, row.tolist(), strict=True) if v == v}
            yield TrialRecord(
                i, dict(self.params[i]), float(self.values[i]), TrialState(self.states[i]), inter
            )

    # -- dunder -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskData):
            return NotImplemented
        if (
            self.name != other.name
            or self.direction != other.direction
            or self.objective != other.objective
            or self.search_space != other.search_space
            or list(self.search_space) != list(other.search_space)
            or self.meta_features.keys() != other.meta_features.keys()
            or len(self.params) != len(other.params)
        ):
            return False
        if not all(_same(v, other.meta_features[k]) for k, v in self.meta_features.items()):
            return False
        for a, b in zip(self.params, other.params, strict=True):
            if a.keys() != b.keys() or not all(_same(v, b[k]) for k, v in a.items()):
                return False
        if (self.feasible is None) != (other.feasible is None):
            return False
        if self.feasible is not None and not np.array_equal(self.feasible, other.feasible):
            return False
        return all(_same(getattr(self, f), getattr(other, f)) for f in _ARRAYS[:4])

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counts = {s.name: int((self.states == s.value).sum()) for s in TrialState}
        counts = {k: v for k, v in counts.items() if v}
        return (
            f"TaskData(name={self.name!r}, n_trials={self.n_trials}, states={counts}, "
            f"n_params={len(self.search_space)}, n_steps={len(self.steps)}, "
            f"direction={self.direction.name}, objective={self.objective!r})"
        )


class MetaDataset:
    """An ordered collection of :class:`TaskData` with unique names.

    Index it by position, by task name or by slice; iterate over the tasks. Derived datasets
    (:meth:`select`, :meth:`drop`, :meth:`folds`, :meth:`concat`) share the task objects.
    """

    def __init__(self, tasks: Iterable[TaskData] = ()) -> None:
        self._tasks: list[TaskData] = list(tasks)
        self._index: dict[str, int] = {}
        for i, task in enumerate(self._tasks):
            if not isinstance(task, TaskData):
                raise TypeError(f"MetaDataset holds TaskData, got {type(task).__name__}.")
            if task.name in self._index:
                raise ValueError(f"Duplicate task name {task.name!r} in MetaDataset.")
            self._index[task.name] = i

    @property
    def tasks(self) -> list[TaskData]:
        return list(self._tasks)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self._tasks]

    @property
    def n_trials(self) -> int:
        """Total number of trials over all tasks."""
        return sum(t.n_trials for t in self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[TaskData]:
        return iter(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @overload
    def __getitem__(self, key: int | str) -> TaskData: ...

    @overload
    def __getitem__(self, key: slice) -> MetaDataset: ...

    def __getitem__(self, key: int | str | slice) -> TaskData | MetaDataset:
        if isinstance(key, str):
            if key not in self._index:
                raise KeyError(f"No task named {key!r}.")
            return self._tasks[self._index[key]]
        if isinstance(key, slice):
            return MetaDataset(self._tasks[key])
        return self._tasks[key]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetaDataset):
            return NotImplemented
        return len(self) == len(other) and all(
            a == b for a, b in zip(self._tasks, other._tasks, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MetaDataset(n_tasks={len(self)}, n_trials={self.n_trials})"

    # -- derived datasets ---------------------------------------------------------------------
    def select(self, names: Iterable[str]) -> MetaDataset:
        """The tasks named ``names``, in the dataset's order; unknown names raise KeyError."""
        wanted = set(names)
        missing = wanted - self._index.keys()
        if missing:
            raise KeyError(f"No tasks named {sorted(missing)}.")
        return MetaDataset(t for t in self._tasks if t.name in wanted)

    def drop(self, names: Iterable[str]) -> MetaDataset:
        """All tasks except those named ``names`` (names not in the dataset are ignored)."""
        unwanted = set(names)
        return MetaDataset(t for t in self._tasks if t.name not in unwanted)

    def rename_params(self, mapping: Mapping[str, str]) -> MetaDataset:
        """The dataset with parameters renamed (``{"mom": "momentum"}``) in every task.

        Why: studies name one hyperparameter differently (``mom`` here, ``momentum`` there), and
        only names in the alias vocabulary are merged automatically; a name left unmerged
        becomes a separate model input that each study sees as constant. A rename that would
        give two parameters of one task the same name (the task already has the new name, or
        two old names map to it) is skipped in that task, with a warning; swaps are fine.

        Example:
            .. code-block:: python

                data = load_from_storage("sqlite:///past.db").rename_params({"mom": "momentum"})
        """
        mapping = dict(mapping)
        for old, new in mapping.items():
            if not isinstance(old, str) or not isinstance(new, str) or not old or not new:
                raise ValueError(f"Parameter names must be non-empty strs, got {old!r}: {new!r}.")
        known = {k for task in self._tasks for k in task.search_space}
        unknown = sorted(set(mapping) - known)
        if unknown:  # a typo would otherwise leave the names it meant to merge apart, silently
            warnings.warn(
                f"No task has the parameters {unknown}, so they are not renamed (the tasks' "
                f"parameters: {sorted(known)}).",
                stacklevel=2,
            )
        tasks = []
        for task in self._tasks:
            rename = {k: mapping.get(k, k) for k in task.search_space}
            while True:  # a name two parameters would take: neither is renamed
                claims: dict[str, list[str]] = {}
                for k, v in rename.items():
                    claims.setdefault(v, []).append(k)
                clash = [k for ks in claims.values() if len(ks) > 1 for k in ks if rename[k] != k]
                if not clash:
                    break
                for k in clash:
                    warnings.warn(
                        f"Task {task.name!r}: renaming {k!r} to {rename[k]!r} would merge it "
                        f"with another parameter of the task; {k!r} is kept as it is.",
                        stacklevel=2,
                    )
                    rename[k] = k
            if all(k == v for k, v in rename.items()):
                tasks.append(task)
                continue
            tasks.append(
                dataclasses.replace(
                    task,
                    search_space={rename[k]: d for k, d in task.search_space.items()},
                    params=[{rename.get(k, k): v for k, v in p.items()} for p in task.params],
                )
            )
        return MetaDataset(tasks)

    def folds(self, k: int, seed: int = 0) -> list[tuple[MetaDataset, MetaDataset]]:
        """``k`` (train, test) splits over TASKS: each task is in exactly one test fold.

        Tasks are shuffled with ``seed``; test folds differ in size by at most one task.
        """
        if not 2 <= k <= len(self):
            raise ValueError(
                f"k must be between 2 and the number of tasks ({len(self)}), got {k}."
            )
        order = np.random.default_rng(seed).permutation(len(self))
        out = []
        for test_idx in np.array_split(order, k):
            test = set(test_idx.tolist())
            out.append(
                (
                    MetaDataset(t for i, t in enumerate(self._tasks) if i not in test),
                    MetaDataset(t for i, t in enumerate(self._tasks) if i in test),
                )
            )
        return out

    def concat(self, *others: MetaDataset) -> MetaDataset:
        """This dataset followed by ``others``; a repeated task name raises ValueError."""
        tasks = list(self._tasks)
        for other in others:
            tasks.extend(other)
        return MetaDataset(tasks)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
        """Write the dataset to ONE ``.npz`` file at exactly ``path`` (no pickle inside)."""
        arrays: dict[str, np.ndarray] = {}
        entries = []
        for i, task in enumerate(self._tasks):
            names = list(task.search_space)
            entries.append(
                {
                    "name": task.name,
                    "direction": task.direction.name.lower(),
                    "objective": task.objective,
                    "meta_features": task.meta_features,
                    "param_names": names,
                    "search_space": {
                        k: distribution_to_json(d) for k, d in task.search_space.items()
                    },
                }
            )
            arrays[f"t{i}.values"] = task.values
            arrays[f"t{i}.states"] = task.states
            arrays[f"t{i}.steps"] = task.steps
            arrays[f"t{i}.curves"] = task.curves
            arrays[f"t{i}.params"] = task.to_arrays(names)
            if task.feasible is not None:
                arrays[f"t{i}.feasible"] = task.feasible
        manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "tasks": entries}
        text = json.dumps(manifest, allow_nan=True).encode("utf-8")
        arrays["manifest"] = np.frombuffer(text, dtype=np.uint8)
        path = Path(path)
        with open(path, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MetaDataset:
        """Read a file written by :meth:`save`; a foreign or corrupt file raises ValueError."""
        path = Path(path).expanduser()
        if path.is_file() and not zipfile.is_zipfile(path):  # numpy would talk of pickles
            raise ValueError(f"{path} is not a MetaDataset file (not an .npz archive).")
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise ValueError(f"{path} is not a MetaDataset file (not a readable .npz): {e}") from e
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is not a MetaDataset file (a single .npy array).")
        with archive:
            if "manifest" not in archive.files:
                raise ValueError(f"{path} is not a MetaDataset file (no 'manifest' entry).")
            try:
                manifest = json.loads(_read(archive, "manifest", path).tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{path}: the MetaDataset manifest is not valid JSON.") from e
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
                raise ValueError(
                    f"{path} is not a MetaDataset file (format "
                    f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, "
                    f"expected {FORMAT_NAME!r})."
                )
            if manifest.get("version") != FORMAT_VERSION:
                raise ValueError(
                    f"{path}: MetaDataset format version {manifest.get('version')!r} is not "
                    f"supported (this release reads version {FORMAT_VERSION})."
                )
            tasks = []
            try:
                for i, entry in enumerate(manifest["tasks"]):
                    arrays = {a: _read(archive, f"t{i}.{a}", path) for a in _ARRAYS}
                    if f"t{i}.feasible" in archive.files:  # a task with constraints
                        arrays["feasible"] = _read(archive, f"t{i}.feasible", path)
                    tasks.append(_task_from_entry(entry, arrays))
            except (KeyError, TypeError, IndexError, ValueError) as e:
                raise ValueError(f"{path}: corrupt MetaDataset file ({e!s}).") from e
        return cls(tasks)


def _read(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except KeyError:
        raise ValueError(f"{path}: corrupt MetaDataset file (missing array {key!r}).") from None
    except ValueError as e:  # object arrays need pickle, which is refused
        raise ValueError(f"{path}: array {key!r} cannot be read without pickle ({e}).") from e


def _task_from_entry(entry: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> TaskData:
    names: list[str] = list(entry["param_names"])
    space = {k: json_to_distribution(v) for k, v in entry["search_space"].items()}
    matrix = np.asarray(arrays["params"], dtype=np.float64)
    n = len(arrays["values"])
    if matrix.shape != (n, len(names)):
        raise ValueError(f"params matrix has shape {matrix.shape}, expected ({n}, {len(names)})")
    columns: list[tuple[str, list[Any], list[bool]]] = []
    for j, name in enumerate(names):
        dist = space[name]
        col = matrix[:, j]
        present = ~np.isnan(col)
        filled = np.where(present, col, 0.0)
        if isinstance(dist, CategoricalDistribution):
            choices = dist.choices
            values: list[Any] = [choices[int(c)] for c in filled.tolist()]
        elif isinstance(dist, IntDistribution):
            values = filled.astype(np.int64).tolist()
        else:
            values = filled.tolist()
        columns.append((name, values, present.tolist()))
    params = [
        {name: values[i] for name, values, present in columns if present[i]} for i in range(n)
    ]
    return TaskData(
        name=entry["name"],
        search_space=space,
        params=params,
        values=arrays["values"],
        states=arrays["states"],
        steps=arrays["steps"],
        curves=arrays["curves"],
        direction=entry["direction"],
        meta_features=entry.get("meta_features", {}),
        objective=entry.get("objective", "value"),
        feasible=arrays.get("feasible"),
    )
