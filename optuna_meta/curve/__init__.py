"""Meta-learned learning-curve model: the final value of a trial from its partial curve.

:class:`CurveModel` is a model file (numpy weights + JSON manifest, no pickle),
:class:`CurveNetwork` its numpy forward pass and :class:`TailCalibration` the measured shape of
its errors on unseen tasks (what MetaPruner reads its probabilities from);
:mod:`optuna_meta.curve._features` turns a study's completed trials and a running trial's
reports into scale-free features. Meta-training lives in :mod:`optuna_meta.curve._train`
(torch, imported only when training); the Domhan-style parametric baseline it is measured
against is :mod:`benchmarks.curve_baseline`. :class:`~optuna_meta.MetaPruner` is the
user-facing consumer.
"""

from optuna_meta.curve._calibration import TailCalibration
from optuna_meta.curve._features import (
    FEATURE_NAMES,
    StudyContext,
    build_context,
    clean_curve,
    featurize,
)
from optuna_meta.curve._model_file import (
    DEFAULT_CURVE_MODEL,
    FORMAT_NAME,
    FORMAT_VERSION,
    CurveModel,
)
from optuna_meta.curve._network import CurveNetwork

__all__ = [
    "DEFAULT_CURVE_MODEL",
    "FEATURE_NAMES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CurveModel",
    "CurveNetwork",
    "StudyContext",
    "TailCalibration",
    "build_context",
    "clean_curve",
    "featurize",
]
