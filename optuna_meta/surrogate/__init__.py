"""The meta-learned surrogate: a deep-kernel GP shared across tasks and adapted in context.

:class:`SurrogateModel` is a model file (weights + search space + provenance) and
:class:`DeepKernelGP` its numpy forward pass and posterior. Meta-training lives in
:mod:`optuna_meta.surrogate._train` (torch, imported only when training); the learned initial
design a model may carry (the configurations a new study tries first) in
:mod:`optuna_meta.surrogate._design`.
"""

from optuna_meta.surrogate._build import build_model, model_space
from optuna_meta.surrogate._model_file import (
    DEFAULT_MODEL,
    FORMAT_VERSION,
    ModelFileError,
    SurrogateModel,
    resolve_model_path,
    shipped_models,
)
from optuna_meta.surrogate._network import DeepKernelGP, Prediction

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT_VERSION",
    "DeepKernelGP",
    "ModelFileError",
    "Prediction",
    "SurrogateModel",
    "build_model",
    "model_space",
    "resolve_model_path",
    "shipped_models",
]
