"""A study's constraints (Optuna's ``trial.set_constraint``) as a feasibility model.

The design and the surrogate's proposals are ranked by expected improvement times the
probability of being feasible; this module reads the constraint margins of a trial and models
them with the surrogate's learned kernel.

Example:
    .. code-block:: python

        feasibility = _feasibility(state, X, margins)  # margins <= 0: feasible
        weights = feasibility.prob(candidates)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from optuna.trial import FrozenTrial

from optuna_meta.sampler._proposal import norm_cdf
from optuna_meta.sampler._values import FLOAT_RESOLUTION, MAD_TO_SD, _floored_sd

if TYPE_CHECKING:
    from optuna_meta.sampler._model_state import _ModelState


def _margin(t: FrozenTrial) -> float | None:
    """The largest of ``t``'s constraint values (``<= 0``: feasible), None without constraints.

    Constraints are Optuna's (``trial.set_constraint``, or TPE's deprecated
    ``constraints_func``): a trial is feasible when every value is 0 or less. NaN counts as
    infinitely violated, as Optuna's own check calls it infeasible.
    """
    values = list(t.constraints.values())
    if not values:
        return None
    return max(math.inf if math.isnan(c) else float(c) for c in values)


@dataclass(frozen=True)
class Feasibility:
    """A study's constraints as a model: ``prob(X)``, the probability ``X`` is feasible."""

    prob: Callable[[np.ndarray], np.ndarray]
    any_feasible: bool


def _feasibility(state: _ModelState, X: np.ndarray, g: np.ndarray) -> Feasibility:
    """A feasibility model from the observations' constraint margins ``g`` (``<= 0``: feasible).

    The margins are compressed (median, MAD, ``arcsinh``; see the comment below), then
    modelled by a GP with the surrogate's learned kernel but without its meta-mean (which
    predicts the objective, not a constraint), standardised like the values. ``any_feasible``
    is judged in the compressed units too.
    Non-finite margins are clipped: ``+inf`` (or NaN) to twice the largest finite one, ``-inf``
    (a trial with no constraint values, e.g. pruned before it set them) to the smallest.
    """
    finite = np.isfinite(g)
    low = float(np.min(g[finite])) if finite.any() else -1.0
    high = float(np.max(g[finite])) if finite.any() else 1.0
    g = np.where(np.isnan(g) | (g == math.inf), max(2.0 * high, 1.0), g)
    g = np.where(g == -math.inf, min(low, 0.0), g)
    if len(g) > 1:
        # Constraint values are often heavy-tailed (a training time, a memory size): one huge
        # violation would make every other configuration look feasible. Compress them
        # robustly around their median and keep 0 as the boundary in the compressed units,
        # which moves it into the feasible side while most trials are infeasible (a safety
        # margin) and out of it once most are feasible (chosen by benchmark, confirmed on
        # fresh seeds: ``benchmarks/README.md``, session 13).
        med = float(np.median(g))
        mad = MAD_TO_SD * float(np.median(np.abs(g - med)))
        if mad > FLOAT_RESOLUTION * float(np.max(np.abs(g))):
            g = med + mad * np.arcsinh((g - med) / mad)
    mu = float(np.mean(g))
    sd = _floored_sd(float(np.std(g)) if len(g) > 1 else 0.0, g)
    post = state.gp.condition(X, (g - mu) / sd, meta_mean=False)
    threshold = -mu / sd

    def prob(C: np.ndarray) -> np.ndarray:
        pred = post.predict(C)
        return norm_cdf((threshold - pred.mean) / np.maximum(pred.std, 1e-9))

    return Feasibility(prob=prob, any_feasible=bool((g <= 0.0).any()))
