"""optuna-meta: hyperparameter optimisation for Optuna that learns from past studies.

``MetaSampler`` proposes a new study's first trials from a surrogate meta-trained on many past
HPO runs; parameters and phases it cannot serve go to TPE. Heavy dependencies (torch for
training, onnxruntime for benchmark data) are imported only where they are needed.

Example:
    .. code-block:: python

        import optuna
        from optuna_meta import MetaSampler

        study = optuna.create_study(direction="maximize", sampler=MetaSampler())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from optuna_meta.sampler import MetaSampler
    from optuna_meta.surrogate import SurrogateModel

__all__ = ["MetaPruner", "MetaSampler", "SurrogateModel", "__version__"]

_LAZY = {
    "MetaPruner": "optuna_meta.pruner",
    "MetaSampler": "optuna_meta.sampler",
    "SurrogateModel": "optuna_meta.surrogate",
}


def __getattr__(name: str) -> Any:
    # Lazy exports keep `import optuna_meta` cheap (PEP 562).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optuna_meta' has no attribute {name!r}")
