"""optuna-meta: hyperparameter optimisation for Optuna that learns from past studies."""

from __future__ import annotations

__version__ = "0.1.0"
