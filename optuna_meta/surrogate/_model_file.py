"""Surrogate model files: one ``.npz`` of float arrays plus an embedded JSON manifest.

A model file must be safe to load from an untrusted source, so it holds nothing that executes
code: numeric arrays read with ``np.load(..., allow_pickle=False)`` and a JSON manifest stored
as UTF-8 bytes. The manifest names the format and version (foreign or newer files are refused
with a clear error), the canonical search space the model was trained on (Optuna distributions
as JSON) with the order of the network's input features (``parameter_order``: the JSON object
is written with sorted keys, so it cannot carry the order itself), the per-parameter defaults
used when a study does not tune a parameter, the learned initial design (optional: the
configurations a new study tries first, see :mod:`optuna_meta.surrogate._design`), the training
tasks, and validation metrics.

Example:
    .. code-block:: python

        from optuna_meta.surrogate import SurrogateModel

        model = SurrogateModel.load("lcbench-mlp")  # a shipped model, by name
        model = SurrogateModel.load("my_model.npz")  # or a file of your own
        print(model.manifest["training_tasks"])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution

from optuna_meta._model_io import (
    MANIFEST_KEY,
    MAX_MODEL_BYTES,
    ModelFile,
    ModelFileError,
    finite_weights,
    model_bytes,
    read_model_file,
    resolve_model_path,
    shipped_models,
)
from optuna_meta.surrogate._network import WEIGHT_NAMES, DeepKernelGP

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_KEY",
    "MAX_MODEL_BYTES",
    "ModelFileError",
    "SurrogateModel",
    "resolve_model_path",
    "shipped_models",
]

FORMAT_NAME = "optuna-meta/surrogate"
FORMAT_VERSION = 2
MIN_FORMAT_VERSION = 2
"""Version 1 files stored the search space as a JSON object, whose keys the writer sorted, so
the order of the network's input features was lost: such a model read its inputs permuted.
Version 2 records the order (``parameter_order``); version 1 files are refused."""
DEFAULT_MODEL = "lcbench-mlp"
DESIGN_FIXED_TRIALS_KEY = "design_fixed_trials"
"""Manifest key: how many design trials take their entries in the design's order before the
expected-improvement order starts (default 1: only the first). ``build_model`` writes 2 for a
design learned with ``design_first_budget``, whose second entry serves the budgets the first
does not (``benchmarks/README.md``, "A design that hedges for short runs"). MetaSampler applies
it in studies without constraints; with constraints the entries after the first are ranked by
expected improvement times the probability of being feasible, as the design knows nothing of
the constraint."""
HEDGING_DESIGN_FIXED_TRIALS = 2
"""The :data:`DESIGN_FIXED_TRIALS_KEY` value of a design whose second entry hedges for the
budgets its first does not serve (``design_first_budget``)."""


@dataclass
class SurrogateModel(ModelFile):
    """A meta-trained surrogate: network weights, its search space and provenance.

    Args:
        weights: The arrays of :data:`~optuna_meta.surrogate._network.WEIGHT_NAMES`.
        search_space: Canonical parameter names -> Optuna distributions; the order is the
            order of the network's input features (see :class:`optuna_meta.space.SpaceEncoder`).
        defaults: A value for every parameter, used when a study does not tune it.
        manifest: Free-form provenance (training tasks, metrics, command) saved as JSON.
        initial_design: Configurations a new study tries first, best first (may be empty).
        task_optima: Each training task's own best configuration (may be empty): further
            configurations the design trials after the first may pick by expected improvement
            (see :func:`optuna_meta.surrogate._build.learn_task_optima`).
    """

    weights: dict[str, np.ndarray]
    search_space: dict[str, BaseDistribution]
    defaults: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    initial_design: list[dict[str, Any]] = field(default_factory=list)
    task_optima: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = set(self.search_space) - set(self.defaults)
        if missing:
            raise ModelFileError(f"Model defaults lack parameters {sorted(missing)}.")
        # Checked here, not when a study first needs one: a default outside its distribution
        # would otherwise send every study the model serves to the fallback.
        self.defaults = _checked_entry(self.defaults, self.search_space, "Model default")
        self.initial_design = [_checked_entry(e, self.search_space) for e in self.initial_design]
        self.task_optima = [_checked_entry(e, self.search_space) for e in self.task_optima]

    def network(self) -> DeepKernelGP:
        return DeepKernelGP(self.weights)

    def to_bytes(self) -> bytes:
        """The file's bytes (also how a pickled sampler carries its model: no array pickling)."""
        manifest = dict(self.manifest)
        manifest.update(
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            search_space={k: distribution_to_json(v) for k, v in self.search_space.items()},
            # JSON objects are written with sorted keys: the feature order needs its own list.
            parameter_order=list(self.search_space),
            defaults=self.defaults,
            initial_design=self.initial_design,
            task_optima=self.task_optima,
        )
        return model_bytes(self.weights, manifest)

    @classmethod
    def _from_source(cls, source: str | os.PathLike[str] | bytes) -> SurrogateModel:
        arrays, manifest, path = read_model_file(
            source, FORMAT_NAME, FORMAT_VERSION, "surrogate", min_version=MIN_FORMAT_VERSION
        )
        weights = finite_weights(arrays, WEIGHT_NAMES, path)
        bad_shapes = _bad_weight_shapes(weights)
        if bad_shapes:
            raise ModelFileError(f"{path} holds weight arrays of the wrong shape: {bad_shapes}.")
        try:
            stored = manifest["search_space"]
            order = list(manifest["parameter_order"])
            if sorted(order) != sorted(stored):
                raise ValueError("parameter_order does not list the search space's parameters")
            space = {k: json_to_distribution(stored[k]) for k in order}
            defaults = dict(manifest["defaults"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path} has an invalid search space: {e}") from e
        design = manifest.pop("initial_design", [])
        optima = manifest.pop("task_optima", [])  # files before session 19 have none
        for key, entries in (("initial_design", design), ("task_optima", optima)):
            if not isinstance(entries, list):
                raise ModelFileError(f"{path}: {key} must be a list of configurations.")
        n_in = weights["W1"].shape[0]
        from optuna_meta.space import SpaceEncoder

        if SpaceEncoder(space).n_features != n_in:
            raise ModelFileError(f"{path}: search space and network input size disagree.")
        try:
            DeepKernelGP(weights)
        except ValueError as e:
            raise ModelFileError(f"{path}: {e}") from e
        try:
            return cls(
                weights=weights,
                search_space=space,
                defaults=defaults,
                manifest=manifest,
                initial_design=design,
                task_optima=optima,
            )
        except ModelFileError as e:
            raise ModelFileError(f"{path}: {e}") from e


def _checked_entry(
    entry: Any, space: dict[str, BaseDistribution], what: str = "Initial design"
) -> dict[str, Any]:
    """A configuration (a design entry, or the defaults: ``what`` words the errors) whose
    parameters the model knows, each value inside its distribution."""
    from optuna_meta.space import ProjectionError, project_value

    if not isinstance(entry, dict) or not entry:
        raise ModelFileError(f"{what} entry must be a non-empty dict, got {entry!r}.")
    unknown = sorted(set(entry) - set(space))
    if unknown:
        raise ModelFileError(f"{what} entry names unknown parameters {unknown}.")
    out = {}
    for name, value in entry.items():
        try:
            projected = project_value(value, space[name])
        except ProjectionError as e:
            raise ModelFileError(f"{what} value {name}={value!r}: {e}") from e
        if projected != value and not (
            isinstance(value, float) and np.isclose(float(projected), value)
        ):
            raise ModelFileError(f"{what} value {name}={value!r} is outside {space[name]}.")
        out[name] = projected
    return out


def _bad_weight_shapes(weights: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Arrays whose shape does not fit the network (a corrupt file loads, then fails later)."""
    if any(weights[k].ndim != 2 for k in ("W1", "W2", "Wf")):
        return {k: weights[k].shape for k in ("W1", "W2", "Wf") if weights[k].ndim != 2}
    (d, h), h2, f = weights["W1"].shape, weights["W2"].shape[1], weights["Wf"].shape[1]
    expected = {"W1": (d, h), "b1": (h,), "W2": (h, h2), "b2": (h2,), "Wf": (h2, f)}
    expected.update(bf=(f,), wm=(h2,))
    return {k: weights[k].shape for k in WEIGHT_NAMES if weights[k].shape != expected.get(k, ())}
