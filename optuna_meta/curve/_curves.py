"""Learning curves of past studies, in the form curve-model meta-training takes.

Why: a user's own past studies (any Optuna storage, read by :mod:`optuna_meta.data`) are the
best training data for a pruner on *their* kind of training runs, but their curves are raw:
steps may be epochs or global steps (500, 1000, ...), trials may report unevenly, pruned trials
stop early, and studies may minimise a loss. Meta-training
(:func:`~optuna_meta.curve._train.build_curve_model`) wants, per task, an array of complete
curves on a common grid, larger values better. This module makes that array:

* the task's final step ``T`` is the largest reported step; only trials that reported at
  ``T`` and at least one earlier step are used (pruned and short trials have no final value to
  learn from);
* each curve is interpolated linearly onto ``grid_size`` evenly spaced steps ``T/G .. T``
  (before its first report it keeps its first value);
* minimised objectives are negated; a task needs :data:`MIN_CURVES_PER_TASK` curves.

Example:
    .. code-block:: python

        from optuna_meta.data import load_from_storage
        from optuna_meta.curve._curves import curves_from_dataset

        curves, bounds = curves_from_dataset(load_from_storage("sqlite:///past.db"))
"""

from __future__ import annotations

import warnings

import numpy as np
from optuna.study import StudyDirection

from optuna_meta.curve._features import clean_curve
from optuna_meta.data import MetaDataset

MAX_GRID_SIZE = 52
"""Points of the common grid at most (LCBench's 52 epochs; fewer when a task reports fewer)."""

MIN_CURVES_PER_TASK = 20
"""A task needs this many complete curves: meta-training draws up to 16 queries per episode
besides at least one context curve."""


def curves_from_dataset(
    data: MetaDataset,
    *,
    grid_size: int = MAX_GRID_SIZE,
    min_curves: int = MIN_CURVES_PER_TASK,
) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """``({task: curves (n, G)}, (lo, hi))``: complete, oriented curves and their value range.

    Raises:
        ValueError: No task has ``min_curves`` complete curves (the message says why).
    """
    if grid_size < 2:
        raise ValueError(f"grid_size must be >= 2, got {grid_size}.")
    out: dict[str, np.ndarray] = {}
    found: list[str] = []
    for task in data:
        if task.steps is None or task.curves is None or len(task.steps) < 2:
            found.append(f"{task.name}: no intermediate values")
            warnings.warn(f"Task {task.name!r} is left out: no intermediate values.", stacklevel=2)
            continue
        sign = -1.0 if task.direction == StudyDirection.MINIMIZE else 1.0
        steps = np.asarray(task.steps, dtype=np.float64)
        T = float(np.max(steps))
        n_grid = min(grid_size, len(steps))
        grid = T * np.arange(1, n_grid + 1) / n_grid
        rows = []
        diverged = short = 0
        for curve in np.asarray(task.curves, dtype=np.float64):
            if np.isinf(curve).any():
                # A run that diverged (inf; a NaN report reads as none): MetaPruner prunes
                # such a trial at its first non-finite report, so its curve teaches nothing.
                diverged += 1
                continue
            s, v = clean_curve(steps, curve, sign)
            if len(s) >= 2 and s[-1] == T:
                rows.append(np.interp(grid, s, v))
            elif len(s):
                short += 1
        note = f"; {diverged} diverged (an infinite value)" if diverged else ""
        if short:
            note += f"; {short} end before it (pruned, or NaN reports, which read as none)"
        found.append(f"{task.name}: {len(rows)} complete curves{note}")
        if len(rows) >= min_curves:
            out[task.name] = np.asarray(rows)
        else:
            warnings.warn(
                f"Task {task.name!r} is left out: {len(rows)} complete learning curves "
                f"(reported up to its last step), fewer than {min_curves}{note}.",
                stacklevel=2,
            )
    if not found:
        raise ValueError(
            "The meta-dataset has no tasks: the source holds no usable study (single-objective, "
            "with completed or pruned trials)."
        )
    if not out:
        raise ValueError(
            f"No task has {min_curves} or more complete learning curves (trials that reported "
            f"intermediate values up to the task's last step): {'; '.join(found)}."
        )
    values = np.concatenate([c.ravel() for c in out.values()])
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        hi = lo + 1.0
    return out, (lo, hi)
