"""The data layer: meta-datasets of past HPO runs and where they come from.

Loaders read past studies from any Optuna storage or sample benchmark data from the YAHPO Gym
surrogates; an exporter writes a meta-dataset back into an Optuna storage for inspection.
"""

from optuna_meta.data._dataset import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MetaDataset,
    TaskData,
    TrialRecord,
)
from optuna_meta.data._storage import META_FEATURES_KEY, export_to_storage, load_from_storage
from optuna_meta.data._yahpo import (
    SCENARIOS,
    TEST_INSTANCES,
    YAHPO_DATA_ENV,
    YahpoSurrogate,
    default_yahpo_dir,
    resolve_yahpo_dir,
)
from optuna_meta.data._yahpo_dataset import YahpoObjective, load_yahpo, yahpo_objective

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "META_FEATURES_KEY",
    "SCENARIOS",
    "TEST_INSTANCES",
    "YAHPO_DATA_ENV",
    "MetaDataset",
    "TaskData",
    "TrialRecord",
    "YahpoObjective",
    "YahpoSurrogate",
    "default_yahpo_dir",
    "export_to_storage",
    "load_from_storage",
    "load_yahpo",
    "resolve_yahpo_dir",
    "yahpo_objective",
]
