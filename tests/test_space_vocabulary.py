"""Tests for the hyperparameter vocabulary and name matching (``optuna_meta.space``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optuna_meta.space import HYPERPARAMETER_ALIASES, canonical_name, map_names, normalize_name
from optuna_meta.space._vocabulary import _build_lookup

ALIAS_GROUPS = [
    ("learning_rate", ["lr", "learning_rate", "eta", "learning_rate_init"]),
    ("batch_size", ["batch_size", "per_device_train_batch_size", "train_batch_size", "bs"]),
    ("weight_decay", ["weight_decay", "wd", "l2"]),
    ("dropout", ["dropout", "max_dropout", "dropout_rate", "hidden_dropout_prob", "p_dropout"]),
    ("num_layers", ["n_layers", "num_layers", "num_hidden_layers"]),
    ("hidden_size", ["hidden_size", "max_units", "n_units", "num_units", "units", "hidden_dim"]),
    ("n_estimators", ["n_estimators", "nrounds", "num_boost_round", "num_rounds", "n_rounds"]),
    ("reg_lambda", ["reg_lambda", "lambda", "lambda_l2"]),
    ("reg_alpha", ["reg_alpha", "alpha", "lambda_l1"]),
    ("subsample", ["subsample", "bagging_fraction"]),
    ("colsample_bytree", ["colsample_bytree", "feature_fraction"]),
    ("min_child_weight", ["min_child_weight", "min_sum_hessian_in_leaf"]),
    ("gamma", ["gamma", "min_split_loss"]),
    ("num_train_epochs", ["num_train_epochs", "epochs", "n_epochs", "max_epochs"]),
    ("momentum", ["momentum"]),
    ("max_depth", ["max_depth"]),
    ("warmup_ratio", ["warmup_ratio"]),
    ("booster", ["booster"]),
]

PAIRS = [
    ("lr", "learning_rate"),
    ("learning_rate", "eta"),
    ("lr", "eta"),
    ("batch_size", "per_device_train_batch_size"),
    ("weight_decay", "wd"),
    ("dropout", "max_dropout"),
    ("n_layers", "num_layers"),
    ("hidden_size", "max_units"),
    ("max_units", "n_units"),
    ("hidden_size", "n_units"),
    ("n_estimators", "nrounds"),
    ("nrounds", "num_boost_round"),
    ("n_estimators", "num_boost_round"),
    ("reg_lambda", "lambda"),
    ("reg_alpha", "alpha"),
]


@pytest.mark.parametrize(("canonical", "names"), ALIAS_GROUPS)
def test_every_alias_resolves_to_its_canonical_name(canonical: str, names: list[str]) -> None:
    for name in names:
        assert canonical_name(name) == canonical, name


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_alias_pairs_map_both_ways(a: str, b: str) -> None:
    assert map_names([a], [b]) == {a: b}
    assert map_names([b], [a]) == {b: a}


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("LR", "learning_rate"),
        ("Learning-Rate", "learning_rate"),
        ("learning rate", "learning_rate"),
        ("learning.rate", "learning_rate"),
        ("optimizer.lr", "learning_rate"),
        ("trainer/learning_rate", "learning_rate"),
        ("model__max_depth", "max_depth"),
        ("a.b.c.weight_decay", "weight_decay"),
        ("clf__n_estimators", "n_estimators"),
        ("--batch-size", "batch_size"),
        ("NumHiddenLayers", "num_layers"),
    ],
)
def test_canonical_name_normalises_and_strips_namespaces(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


@pytest.mark.parametrize("name", ["depth", "beta1", "num_leaves", "optimizer", "", "x.y"])
def test_unknown_or_ambiguous_names_have_no_canonical_name(name: str) -> None:
    assert canonical_name(name) is None


def test_vocabulary_covers_the_required_names_and_has_no_ambiguity() -> None:
    required = {canonical for canonical, _ in ALIAS_GROUPS}
    assert required <= set(HYPERPARAMETER_ALIASES)
    meaning: dict[str, str] = {}
    for canonical, aliases in HYPERPARAMETER_ALIASES.items():
        for name in (canonical, *aliases):
            # A spelling may repeat within a group (n_rounds / nrounds) but never across groups.
            assert meaning.setdefault(normalize_name(name), canonical) == canonical, name
    for left_out in ("depth", "beta1"):
        assert normalize_name(left_out) not in meaning


def test_build_lookup_refuses_an_alias_with_two_meanings() -> None:
    with pytest.raises(ValueError, match="alias of both"):
        _build_lookup({"a": ("x",), "b": ("X",)})


def test_normalize_name() -> None:
    assert normalize_name("Per-Device Train.Batch_Size") == "perdevicetrainbatchsize"


def test_map_names_realistic_spaces() -> None:
    user = ["optimizer.lr", "per_device_train_batch_size", "model__max_depth", "Dropout", "seed"]
    model = ["batch_size", "learning_rate", "max_depth", "max_dropout", "num_layers"]
    assert map_names(user, model) == {
        "optimizer.lr": "learning_rate",
        "per_device_train_batch_size": "batch_size",
        "model__max_depth": "max_depth",
        "Dropout": "max_dropout",
    }


def test_map_names_xgboost_style_model() -> None:
    user = ["learning_rate", "n_estimators", "reg_lambda", "reg_alpha", "subsample", "gamma"]
    model = ["eta", "nrounds", "lambda", "alpha", "subsample", "gamma", "booster"]
    assert map_names(user, model) == {
        "learning_rate": "eta",
        "n_estimators": "nrounds",
        "reg_lambda": "lambda",
        "reg_alpha": "alpha",
        "subsample": "subsample",
        "gamma": "gamma",
    }


def test_suffix_match_for_names_outside_the_vocabulary() -> None:
    assert map_names(["model__num_leaves"], ["num_leaves"]) == {"model__num_leaves": "num_leaves"}
    assert map_names(["num_leaves"], ["lgbm.num_leaves"]) == {"num_leaves": "lgbm.num_leaves"}
    assert map_names(["num_leaves"], ["min_data_in_leaf"]) == {}


def test_exact_match_beats_alias_and_alias_beats_suffix() -> None:
    # Both user names want "learning_rate"; the identical name wins even though "lr" comes first.
    assert map_names(["lr", "learning_rate"], ["learning_rate"]) == {
        "learning_rate": "learning_rate"
    }
    # Normalised identity beats an alias.
    assert map_names(["eta", "Learning-Rate"], ["learning_rate"]) == {
        "Learning-Rate": "learning_rate"
    }
    # An alias of the whole name beats a trailing component.
    assert map_names(["optimizer.lr", "eta"], ["learning_rate"]) == {"eta": "learning_rate"}


def test_competing_aliases_go_to_the_first_and_never_share_a_model_name() -> None:
    result = map_names(["lr", "eta", "learning_rate_init"], ["learning_rate"])
    assert result == {"lr": "learning_rate"}
    # With two model names of the same meaning, both get used.
    result = map_names(["lr", "eta"], ["learning_rate", "learning_rate_init"])
    assert result == {"lr": "learning_rate", "eta": "learning_rate_init"}


def test_explicit_mapping_wins_over_aliases() -> None:
    user = ["lr", "alpha", "wd"]
    model = ["learning_rate", "reg_alpha", "weight_decay", "momentum"]
    # "alpha" is really an L2 strength here (sklearn's Ridge): route it to weight_decay.
    result = map_names(user, model, mapping={"alpha": "weight_decay"})
    assert result == {"lr": "learning_rate", "alpha": "weight_decay"}
    assert "wd" not in result  # weight_decay is taken by the explicit entry
    # An explicit entry can also override an identical name.
    assert map_names(["momentum"], ["momentum", "beta"], mapping={"momentum": "beta"}) == {
        "momentum": "beta"
    }


def test_mapping_to_none_excludes_a_name() -> None:
    assert map_names(["lr", "eta"], ["learning_rate"], mapping={"lr": None}) == {
        "eta": "learning_rate"
    }


def test_mapping_reserves_its_model_name_for_a_user_name_not_seen_yet() -> None:
    result = map_names(["lr"], ["learning_rate"], mapping={"later_lr": "learning_rate"})
    assert result == {}


def test_bad_mapping_raises() -> None:
    with pytest.raises(ValueError, match="has no parameter 'nope'"):
        map_names(["lr"], ["learning_rate"], mapping={"lr": "nope"})
    with pytest.raises(ValueError, match="only one user parameter"):
        map_names(["a", "b"], ["x"], mapping={"a": "x", "b": "x"})


_names = st.sampled_from(
    [n for c, aliases in HYPERPARAMETER_ALIASES.items() for n in (c, *aliases)]
    + ["optimizer.lr", "model__max_depth", "seed", "num_leaves", "x", "LR", "Eta"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_names, max_size=10), st.lists(_names, max_size=10))
def test_map_names_is_one_to_one_and_only_uses_given_names(
    user: list[str], model: list[str]
) -> None:
    result = map_names(user, model)
    assert set(result) <= set(user)
    assert set(result.values()) <= set(model)
    assert len(set(result.values())) == len(result)
    for name in set(user) & set(model):
        assert result[name] == name  # identical names always pair up
