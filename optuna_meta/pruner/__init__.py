"""MetaPruner: prune trials whose meta-learned learning-curve prediction is unlikely to win.

See :mod:`optuna_meta.pruner._pruner` for the decision rule, defaults and recorded attrs, and
:mod:`optuna_meta.curve` for the curve model.
"""

from optuna_meta.pruner._pruner import (
    ATTR_PREDICTED_FINAL,
    ATTR_PREDICTED_FINAL_STD,
    ATTR_PROB_IMPROVEMENT,
    AUTO_MEDIAN_OFFSET,
    DEFAULT_MIN_FRACTION,
    DEFAULT_N_RAMP_TRIALS,
    DEFAULT_N_STARTUP_TRIALS,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    CurvePrediction,
    MetaPruner,
)

__all__ = [
    "ATTR_PREDICTED_FINAL",
    "ATTR_PREDICTED_FINAL_STD",
    "ATTR_PROB_IMPROVEMENT",
    "AUTO_MEDIAN_OFFSET",
    "DEFAULT_MIN_FRACTION",
    "DEFAULT_N_RAMP_TRIALS",
    "DEFAULT_N_STARTUP_TRIALS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "CurvePrediction",
    "MetaPruner",
]
