"""MetaSampler: the meta-learned sampler, and the user attrs it records on trials.

The private modules, one concept each:

- ``_sampler``: ``MetaSampler`` itself: the design, the surrogate's proposals, the hand-over
  to the fallback, and the attrs it records;
- ``_proposal``: the acquisition (expected improvement) and its optimisation in a box;
- ``_model_state``: a loaded model's encoder, design and box, and range coverage;
- ``_values``: a study's values as the surrogate sees them (orientation, infinities,
  outliers, standardisation, pruned trials' predicted finals);
- ``_constraints``: constraint margins and the feasibility model;
- ``_schedule``: which trials after the design go to the fallback, and its seeding;
- ``_trials``: what is read of Optuna's trials (enqueued values, finished names, repeats).
"""

from optuna_meta._attrs import ATTR_PRED_MEAN, ATTR_PRED_STD, ATTR_PREDICTED_FINAL, ATTR_SOURCE
from optuna_meta.sampler._sampler import DEFAULT_N_META_TRIALS, MetaSampler

__all__ = [
    "ATTR_PREDICTED_FINAL",
    "ATTR_PRED_MEAN",
    "ATTR_PRED_STD",
    "ATTR_SOURCE",
    "DEFAULT_N_META_TRIALS",
    "MetaSampler",
]
