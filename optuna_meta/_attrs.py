"""The user attrs optuna-meta writes on trials, shared by the sampler and the pruner.

Why a module of its own: MetaPruner writes ``optuna_meta:predicted_final`` and MetaSampler reads
it, so both need the names, and importing the pruner must not import the sampler's stack.
Recording is best-effort: a trial finished meanwhile, or a storage that refuses the write,
must never break the user's study.

Example:
    .. code-block:: python

        set_user_attr(study, trial, ATTR_PREDICTED_FINAL, 0.93)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optuna_meta._logging import get_logger

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

_logger = get_logger(__name__)

ATTR_PREFIX = "optuna_meta:"
ATTR_PREDICTED_FINAL = ATTR_PREFIX + "predicted_final"
"""User attr a pruner (MetaPruner) leaves on a pruned trial: its predicted final value."""
ATTR_SOURCE = ATTR_PREFIX + "source"
"""User attr MetaSampler leaves on every trial: ``"meta"`` (the surrogate's) or ``"fallback"``."""
ATTR_PRED_MEAN = ATTR_PREFIX + "predicted_mean"
"""User attr: the surrogate's predicted objective of the configuration it proposed."""
ATTR_PRED_STD = ATTR_PREFIX + "predicted_std"
"""User attr: the standard deviation of that prediction (the user's units)."""


def set_user_attr(study: Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Write a user attr on ``trial`` (the dashboard shows it); failures are only logged."""
    try:
        study._storage.set_trial_user_attr(trial._trial_id, key, value)
    except Exception as e:  # a finished or foreign trial: recording is best-effort
        _logger.debug(f"Could not record {key} on trial {trial.number}: {e}")
