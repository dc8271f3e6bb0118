"""Curve model files: one ``.npz`` of float arrays plus an embedded JSON manifest.

The same rules as the sampler's surrogate files (:mod:`optuna_meta.surrogate._model_file`): no
pickle, only numeric arrays read with ``np.load(..., allow_pickle=False)`` and a UTF-8 JSON
manifest; foreign, corrupt, too new or too large files are refused with
:class:`~optuna_meta.surrogate.ModelFileError`. The manifest also records the feature layout
(:data:`~optuna_meta.curve._features.FEATURE_NAMES`, ``kappa``) so a file made for another
feature set is refused instead of silently mispredicting, and the command that made it. Files
made before the early-rank inputs (their manifest lists
:data:`~optuna_meta.curve._features.BASE_FEATURE_NAMES`) still load: their network reads the
leading inputs it was trained on.

Example:
    .. code-block:: python

        from optuna_meta.curve import CurveModel

        model = CurveModel.load("lcbench-curve")  # the shipped model, by name
        print(model.manifest["command"], model.manifest["training_tasks"])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optuna_meta._model_io import (
    ModelFile,
    ModelFileError,
    finite_weights,
    model_bytes,
    read_model_file,
)
from optuna_meta.curve._calibration import CALIBRATION_NAMES, CONTEXT_NAME, TailCalibration
from optuna_meta.curve._features import BASE_FEATURE_NAMES, FEATURE_NAMES, KAPPA
from optuna_meta.curve._network import WEIGHT_NAMES, CurveNetwork

FORMAT_NAME = "optuna-meta/curve"
FORMAT_VERSION = 1
DEFAULT_CURVE_MODEL = "lcbench-curve"
SERVED_LAYOUTS: tuple[tuple[str, ...], ...] = (FEATURE_NAMES, BASE_FEATURE_NAMES)
"""Feature layouts a model file may have been trained on: each is a prefix of
:data:`FEATURE_NAMES`, so the network is fed the first ``n_inputs`` features."""


@dataclass
class CurveModel(ModelFile):
    """A meta-trained learning-curve model: network weights and provenance.

    Args:
        weights: The arrays of :data:`~optuna_meta.curve._network.WEIGHT_NAMES`, plus those of
            :data:`~optuna_meta.curve._calibration.CALIBRATION_NAMES` when the model carries a
            tail calibration (models trained with ``calibration_folds > 0``), and
            :data:`~optuna_meta.curve._calibration.CONTEXT_NAME` when it is by context size.
        manifest: Free-form provenance (training tasks, metrics, command) saved as JSON.
    """

    weights: dict[str, np.ndarray]
    manifest: dict[str, Any] = field(default_factory=dict)

    def network(self) -> CurveNetwork:
        return CurveNetwork(self.weights)

    def calibration(self) -> TailCalibration | None:
        """The tail calibration of the model's errors, ``None`` for an uncalibrated model."""
        return TailCalibration.from_arrays(self.weights)

    def to_bytes(self) -> bytes:
        manifest = dict(self.manifest)
        manifest.update(
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            features=list(FEATURE_NAMES[: _n_inputs(self.weights)]),
            kappa=KAPPA,
        )
        return model_bytes(self.weights, manifest)

    @classmethod
    def _from_source(cls, source: str | os.PathLike[str] | bytes) -> CurveModel:
        arrays, manifest, path = read_model_file(source, FORMAT_NAME, FORMAT_VERSION, "curve")
        layouts = [list(names) for names in SERVED_LAYOUTS]
        if manifest.get("features") not in layouts or manifest.get("kappa") != KAPPA:
            raise ModelFileError(
                f"{path} was made for another feature layout than this optuna-meta's; "
                "re-train the model."
            )
        present = [k for k in CALIBRATION_NAMES if k in arrays]
        if (present or CONTEXT_NAME in arrays) and len(present) != len(CALIBRATION_NAMES):
            raise ModelFileError(f"{path} holds a partial tail calibration ({present}).")
        if CONTEXT_NAME in arrays:
            present.append(CONTEXT_NAME)
        weights = finite_weights(arrays, WEIGHT_NAMES + tuple(present), path)
        try:
            net = CurveNetwork(weights)
            TailCalibration.from_arrays(weights)
        except ValueError as e:
            raise ModelFileError(f"{path}: {e}") from e
        if net.n_inputs != len(manifest["features"]):
            raise ModelFileError(f"{path}: network input size and feature layout disagree.")
        return cls(weights=weights, manifest=manifest)


def _n_inputs(weights: dict[str, np.ndarray]) -> int:
    """The network's input size (the full layout's when the weights do not tell)."""
    w1 = np.asarray(weights.get("W1", np.empty(0)))
    return int(w1.shape[0]) if w1.ndim == 2 else len(FEATURE_NAMES)
