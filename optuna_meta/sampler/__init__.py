"""MetaSampler: the meta-learned sampler, and the user attrs it records on trials."""

from optuna_meta.sampler._sampler import (
    ATTR_PRED_MEAN,
    ATTR_PRED_STD,
    ATTR_PREDICTED_FINAL,
    ATTR_SOURCE,
    DEFAULT_N_META_TRIALS,
    MetaSampler,
)

__all__ = [
    "ATTR_PREDICTED_FINAL",
    "ATTR_PRED_MEAN",
    "ATTR_PRED_STD",
    "ATTR_SOURCE",
    "DEFAULT_N_META_TRIALS",
    "MetaSampler",
]
