"""A loaded surrogate in the sampler's hands: its encoder, design and search box, and how
well it covers a user's parameter ranges.

Why a module of its own: everything here depends on the model alone (not on a study), so it
is built once per model and shared by the studies a sampler serves.

Example:
    >>> from optuna.distributions import FloatDistribution
    >>> model = FloatDistribution(1e-4, 1e-1, log=True)
    >>> round(range_coverage(FloatDistribution(1e-4, 1.0, log=True), model), 2)
    0.75
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution

from optuna_meta.sampler._proposal import Box
from optuna_meta.space import (
    ProjectionError,
    SpaceEncoder,
    can_represent,
    canonical_name,
    encode_value,
    map_names,
    normalize_name,
    project_value,
)
from optuna_meta.space._projection import _choice_number
from optuna_meta.surrogate import SurrogateModel, shipped_models
from optuna_meta.surrogate._model_file import DESIGN_FIXED_TRIALS_KEY


class _ModelState:
    """A loaded model with its encoder and the unit-space encoding of its defaults."""

    def __init__(self, model: SurrogateModel) -> None:
        self.model = model
        self.gp = model.network()
        self.encoder = SpaceEncoder(model.search_space)
        self.n_features = self.encoder.n_features
        self._canonical = {(canonical_name(n) or normalize_name(n)): n for n in model.search_space}
        self.fixed_values: dict[str, Any] | None = None  # the user-named values behind `fixed`
        self.model_default_x = self.encoder.encode([model.defaults])[0]
        fixed_trials = model.manifest.get(DESIGN_FIXED_TRIALS_KEY, 1)
        # A value that is not a positive integer (a foreign manifest): only the first, as before.
        valid = isinstance(fixed_trials, int) and fixed_trials >= 1
        self.design_fixed_trials: int = fixed_trials if valid else 1
        self.fix({})

    def fix(self, model_params: Mapping[str, Any]) -> None:
        """Assume ``model_params`` (the user's ``fixed_params``) for untuned parameters.

        They replace the model's defaults, which fill every parameter a configuration lacks.
        """
        self.fixed = frozenset(model_params)
        self.default_x = self.encoder.encode([{**self.model.defaults, **model_params}])[0]
        self.design = self._encode_all(self.model.initial_design)
        self.task_optima = self._encode_all(self.model.task_optima)

    def _encode_all(self, configs: list[dict[str, Any]]) -> np.ndarray:
        raw = self.encoder.encode(configs) if configs else np.empty((0, self.n_features))
        # A conditional parameter inactive in an entry takes the default, as in `encode`.
        return np.where(np.isnan(raw), self.default_x, raw)

    def match(self, user_name: str) -> str | None:
        if user_name in self.model.search_space:
            return user_name
        normalized = normalize_name(user_name)
        for n in self.model.search_space:
            if normalize_name(n) == normalized:
                return n
        canon = canonical_name(user_name)
        return self._canonical.get(canon) if canon is not None else None

    def encode(self, model_params: Mapping[str, Any]) -> np.ndarray | None:
        if not model_params:
            return None
        x = self.encoder.encode([model_params])[0]
        return np.where(np.isnan(x), self.default_x, x)

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        return self.encoder.decode(x[None, :])[0]

    def off_default_branch(self, X: np.ndarray, tuned: Mapping[str, BaseDistribution]) -> set[int]:
        """Rows of ``X`` on another branch of a categorical the study does not tune.

        Such a design entry was chosen for another branch of the space (XGBoost's
        ``gblinear`` when the study runs trees): its other values mean little there, so the
        design skips it. The study's branch is its ``fixed_params`` value, else the model's
        default. When no entry is on a fixed branch (the XGBoost design has ``dart`` entries
        but no ``gbtree`` one), the entries on the model's default branch are kept, clipped
        onto the fixed one: measured on rbv2_xgboost with ``booster`` fixed at ``gbtree``,
        skipping them all cost 0.003-0.007 regret from 3 to 50 trials, keeping them is level
        with not fixing it (``benchmarks/README.md``, session 14).
        """
        out: set[int] = set()
        for name, dist in self.model.search_space.items():
            if name in tuned or not isinstance(dist, CategoricalDistribution):
                continue
            sl = self.encoder.feature_slices[name]
            choice = np.argmax(X[:, sl], axis=1)
            other = choice != int(np.argmax(self.default_x[sl]))
            if other.all():
                other = choice != int(np.argmax(self.model_default_x[sl]))
            out.update(np.flatnonzero(other).tolist())
        return out

    def box(self, user_space: Mapping[str, BaseDistribution]) -> Box:
        lower = self.default_x.copy()
        upper = self.default_x.copy()
        groups = []
        for name, model_dist in self.model.search_space.items():
            sl = self.encoder.feature_slices[name]
            user_dist = user_space.get(name)
            if user_dist is None:
                continue
            if isinstance(model_dist, CategoricalDistribution):
                idx = np.arange(sl.start, sl.stop)
                allowed = []
                for c in getattr(user_dist, "choices", ()):
                    try:
                        v = project_value(c, model_dist)
                    except ProjectionError:
                        continue
                    allowed.append(sl.start + model_dist.choices.index(v))
                if allowed:
                    groups.append((idx, np.asarray(sorted(set(allowed)))))
                continue
            lo_hi = []
            if isinstance(user_dist, CategoricalDistribution):  # numeric choices, e.g. [32, 64]
                for c in user_dist.choices:
                    try:
                        v = project_value(c, model_dist)
                    except ProjectionError:
                        continue
                    lo_hi.append(float(encode_value(model_dist, v)))
                lo_hi = [min(lo_hi), max(lo_hi)] if lo_hi else []
            for bound in (getattr(user_dist, "low", None), getattr(user_dist, "high", None)):
                if bound is None:
                    break
                v = project_value(bound, model_dist)
                lo_hi.append(float(encode_value(model_dist, v)))
            if len(lo_hi) == 2:
                lower[sl.start], upper[sl.start] = min(lo_hi), max(lo_hi)
        return Box(lower, upper, tuple(groups))


def range_coverage(user_dist: BaseDistribution, model_dist: BaseDistribution) -> float:
    """The share of ``user_dist``'s range inside ``model_dist``'s, in the model's scale.

    Categorical choices count one each: for a numeric model parameter, a number inside its
    range counts as covered (not a boolean, a string or ``None``); for a categorical one, a
    choice it matches.

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> model = FloatDistribution(1e-4, 1e-1, log=True)
        >>> round(range_coverage(FloatDistribution(1e-6, 1e-2, log=True), model), 2)
        0.5
    """
    lo_m, hi_m = getattr(model_dist, "low", None), getattr(model_dist, "high", None)
    if isinstance(user_dist, CategoricalDistribution):
        if lo_m is None or hi_m is None:
            one = CategoricalDistribution
            return float(np.mean([can_represent(one([c]), model_dist) for c in user_dist.choices]))
        numbers = [_choice_number(c) for c in user_dist.choices]
        return float(np.mean([n is not None and lo_m <= n <= hi_m for n in numbers]))
    if lo_m is None or hi_m is None:
        return 1.0
    lo_u, hi_u = getattr(user_dist, "low", None), getattr(user_dist, "high", None)
    if lo_u is None or hi_u is None:
        return 1.0
    if hi_u <= lo_u:
        return 1.0 if lo_m <= lo_u <= hi_m else 0.0
    log = bool(getattr(model_dist, "log", False)) and lo_u > 0 and lo_m > 0
    f = math.log if log else float
    overlap = min(f(hi_u), f(hi_m)) - max(f(lo_u), f(lo_m))
    return max(0.0, min(1.0, overlap / (f(hi_u) - f(lo_u))))


def _model_label(model: object) -> str:
    """How a warning names ``model`` (a pickled model's bytes would fill the log)."""
    if isinstance(model, tuple) and len(model) == 2 and model[0] == "__bytes__":
        return "(a pickled model object)"
    if isinstance(model, SurrogateModel):
        return repr(model.manifest.get("name", "(a model object)"))
    return repr(model)


@functools.cache
def _shipped_spaces() -> tuple[tuple[str, Any, Mapping[str, BaseDistribution]], ...]:
    """Each shipped surrogate's name, manifest name and search space, loaded once a process
    (the files ship with the package; loading them all takes about 9 ms)."""
    out = []
    for name in shipped_models():
        try:
            model = SurrogateModel.load(name)
        except Exception:  # a curve model, or a file this version cannot read
            continue
        out.append((name, model.manifest.get("name"), model.search_space))
    return tuple(out)


def _best_shipped_model(names: Collection[str], exclude: SurrogateModel) -> tuple[str, int] | None:
    """The shipped surrogate of another kind than ``exclude`` that knows most of ``names``:
    ``(name, how many)``. Models of ``exclude``'s own parameters (``lcbench-mlp-short`` beside
    ``lcbench-mlp``) know the same names, so they never count."""
    best: tuple[str, int] | None = None
    own = set(exclude.search_space)
    for name, manifest_name, space in _shipped_spaces():
        if manifest_name == exclude.manifest.get("name") or set(space) == own:
            continue
        n = len(map_names(names, space))
        if best is None or n > best[1]:
            best = (name, n)
    return best


def _is_shipped(model: SurrogateModel) -> bool:
    """Whether ``model`` is one of the shipped surrogates (by manifest name and parameters)."""
    name, own = model.manifest.get("name"), set(model.search_space)
    return any(n == name and set(space) == own for _, n, space in _shipped_spaces())
