"""The data layer: meta-datasets of past HPO runs and where they come from.

Loaders read past studies from any Optuna storage or sample benchmark data from the YAHPO Gym
surrogates; an exporter writes a meta-dataset back into an Optuna storage for inspection.
"""

from optuna_meta.data._yahpo import (
    SCENARIOS,
    TEST_INSTANCES,
    YAHPO_DATA_ENV,
    YahpoSurrogate,
    default_yahpo_dir,
    resolve_yahpo_dir,
)

__all__ = [
    "SCENARIOS",
    "TEST_INSTANCES",
    "YAHPO_DATA_ENV",
    "YahpoSurrogate",
    "default_yahpo_dir",
    "resolve_yahpo_dir",
]
