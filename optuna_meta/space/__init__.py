"""The search-space layer: how a meta-model and a user's study see the same hyperparameters.

Three small pieces sit between a meta-model and an Optuna study:

* **Encoding** (:class:`SpaceEncoder`, :func:`encode_value`, :func:`decode_value`): every
  Optuna distribution becomes unit-interval features (one per numerical parameter, one-hot per
  categorical choice), matching Optuna's own transform. Any features decode to a valid value;
  discrete values round-trip exactly. A parameter missing from a trial (conditional spaces)
  encodes to ``NaN`` and is left out when decoding.
* **Vocabulary** (:func:`canonical_name`, :func:`map_names`): user names such as ``lr``,
  ``optimizer.lr`` or ``per_device_train_batch_size`` are matched to a model's names (``eta``,
  ``batch_size``) through :data:`HYPERPARAMETER_ALIASES`; an explicit mapping always wins.
* **Projection** (:func:`project_value`, :func:`project_params`): a proposal made in the model's
  space is clipped, rounded or matched into the user's distribution. When a categorical proposal
  has no counterpart, :class:`ProjectionError` is raised (or the parameter is left out by
  :func:`project_params`) so the caller can fall back to another sampler.

Example:
    .. code-block:: python

        from optuna.distributions import FloatDistribution, IntDistribution
        from optuna_meta.space import SpaceEncoder, map_names, project_params

        model_space = {
            "eta": FloatDistribution(1e-3, 1.0, log=True),
            "max_depth": IntDistribution(1, 15),
        }
        user_space = {
            "optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
            "model__max_depth": IntDistribution(2, 8, step=2),
        }
        names = map_names(user_space, model_space)
        # {"optimizer.lr": "eta", "model__max_depth": "max_depth"}

        encoder = SpaceEncoder(model_space)
        X = encoder.encode([{"eta": 0.05, "max_depth": 6}, {"eta": 0.5}])  # NaN: inactive
        proposal = encoder.decode([[0.4, 0.9]])[0]  # {"eta": ..., "max_depth": 14}
        params = project_params(proposal, user_space, names=names)
        # {"optimizer.lr": 0.01, "model__max_depth": 8}: clipped, then snapped to the step grid
"""

from optuna_meta.space._box import Box
from optuna_meta.space._encoding import (
    SpaceEncoder,
    decode_value,
    encode_value,
    n_features_of,
)
from optuna_meta.space._projection import (
    ProjectionError,
    can_represent,
    project_params,
    project_value,
)
from optuna_meta.space._vocabulary import (
    HYPERPARAMETER_ALIASES,
    canonical_name,
    map_names,
    normalize_name,
)

__all__ = [
    "HYPERPARAMETER_ALIASES",
    "Box",
    "ProjectionError",
    "SpaceEncoder",
    "can_represent",
    "canonical_name",
    "decode_value",
    "encode_value",
    "map_names",
    "n_features_of",
    "normalize_name",
    "project_params",
    "project_value",
]
