"""MetaSampler as a drop-in Optuna sampler: attrs, directions, ranges, distributions, names."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import pytest
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.samplers import RandomSampler
from optuna.trial import FrozenTrial, TrialState

from optuna_meta import MetaSampler
from optuna_meta.sampler import ATTR_PRED_MEAN, ATTR_PRED_STD, ATTR_SOURCE
from optuna_meta.space import project_value
from optuna_meta.surrogate import SurrogateModel

optuna.logging.set_verbosity(optuna.logging.WARNING)

FAST = {"n_candidates": 64}


@pytest.fixture(scope="module")
def shipped() -> SurrogateModel:
    return SurrogateModel.load("lcbench-mlp")


class RecordingSampler(RandomSampler):
    """A fallback that records which parameters it was asked for."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.asked: list[str] = []

    def sample_independent(
        self, study: Any, trial: FrozenTrial, param_name: str, dist: BaseDistribution
    ) -> Any:
        self.asked.append(param_name)
        return super().sample_independent(study, trial, param_name, dist)


def assert_params_inside(study: optuna.Study) -> None:
    for t in study.trials:
        for name, value in t.params.items():
            dist = t.distributions[name]
            assert dist._contains(dist.to_internal_repr(value)), (t.number, name, value, dist)


def lcbench_objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    bs = trial.suggest_int("batch_size", 16, 512, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    layers = trial.suggest_int("n_layers", 1, 5)
    return (
        (math.log10(lr) + 2.5) ** 2 + (dropout - 0.2) ** 2 + abs(math.log2(bs) - 6) / 10 + layers
    )


# -- 1. drop-in --------------------------------------------------------------------------------
def test_drop_in_default_model_records_source_and_predictions() -> None:
    study = optuna.create_study(sampler=MetaSampler())
    study.optimize(lcbench_objective, n_trials=5)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5
    assert_params_inside(study)
    for t in study.trials:
        assert t.user_attrs[ATTR_SOURCE] == "meta"
        if t.number < 2:  # the standardisation does not know the user's units yet
            assert ATTR_PRED_MEAN not in t.user_attrs
            assert ATTR_PRED_STD not in t.user_attrs
        else:
            mean, std = t.user_attrs[ATTR_PRED_MEAN], t.user_attrs[ATTR_PRED_STD]
            assert isinstance(mean, float) and math.isfinite(mean)
            assert isinstance(std, float) and math.isfinite(std) and std > 0.0


def test_first_trial_is_the_projected_zero_shot_guess_for_any_seed(
    shipped: SurrogateModel,
) -> None:
    names = {
        "lr": "learning_rate",
        "batch_size": "batch_size",
        "dropout": "dropout",
        "n_units": "hidden_size",
    }

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-3, 5e-3, log=True)  # narrower than the model's range
        trial.suggest_int("batch_size", 64, 256, log=True)
        trial.suggest_float("dropout", 0.0, 0.5)
        trial.suggest_int("n_units", 32, 2048, log=True)  # wider
        return 0.0

    firsts = []
    for seed in (0, 1, 0):
        study = optuna.create_study(sampler=MetaSampler(seed=seed, **FAST))
        study.optimize(objective, n_trials=1)
        first = study.trials[0]
        assert first.user_attrs[ATTR_SOURCE] == "meta"
        assert_params_inside(study)
        expected = {
            user: project_value(shipped.defaults[model], first.distributions[user])
            for user, model in names.items()
        }
        assert first.params == pytest.approx(expected)
        firsts.append(first.params)
    assert firsts[0] == firsts[1] == firsts[2]


def test_same_seed_same_proposals_other_seed_differs() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        # two design trials (the same for every seed), then seed-dependent proposals
        study = optuna.create_study(sampler=MetaSampler(seed=seed, n_design_trials=2, **FAST))
        study.optimize(lcbench_objective, n_trials=6)
        return [t.params for t in study.trials]

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert a[:2] == c[:2] and a[2:] != c[2:]


# -- 2. directions, ranges, distributions, names -------------------------------------------------
def test_minimize_and_maximize_are_mirror_images() -> None:
    """Minimising f and maximising -f give the same proposals and negated predictions."""

    def run(direction: str, sign: float) -> optuna.Study:
        study = optuna.create_study(direction=direction, sampler=MetaSampler(seed=3, **FAST))
        study.optimize(lambda t: sign * lcbench_objective(t), n_trials=6)
        assert_params_inside(study)
        return study

    low, high = run("minimize", 1.0), run("maximize", -1.0)
    assert [t.params for t in low.trials] == [t.params for t in high.trials]
    for a, b in zip(low.trials[2:], high.trials[2:], strict=True):
        assert a.user_attrs[ATTR_PRED_MEAN] == pytest.approx(-b.user_attrs[ATTR_PRED_MEAN])
        assert a.user_attrs[ATTR_PRED_STD] == pytest.approx(b.user_attrs[ATTR_PRED_STD])
    values = [t.value for t in low.trials]
    # the prediction is in the user's units: near the observed values, not standardised
    pred = low.trials[-1].user_attrs[ATTR_PRED_MEAN]
    spread = max(values) - min(values)
    assert min(values) - 3 * spread <= pred <= max(values) + 3 * spread


@pytest.mark.parametrize(
    ("lr_range", "units_range"),
    [((3e-3, 4e-3), (100, 120)), ((1e-7, 10.0), (2, 4096))],
    ids=["narrower", "wider"],
)
def test_user_ranges_narrower_and_wider(
    lr_range: tuple[float, float], units_range: tuple[int, int]
) -> None:
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", *lr_range, log=True)
        units = trial.suggest_int("hidden_size", *units_range, log=True)
        mom = trial.suggest_float("momentum", 0.0, 1.0)
        return (math.log10(lr) + 2.4) ** 2 + (math.log2(units) - 6.8) ** 2 + mom

    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    wider = lr_range[0] < 1e-4
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=10)
    assert_params_inside(study)
    # Wider: learning rate and width lie mostly outside the model's ranges, which leaves one
    # parameter of three served, too few: TPE samples the study, and says why. Trial 0 has no
    # finished trial to judge the study by, so its momentum is the design's.
    expected = ["meta"] + ["fallback" if wider else "meta"] * 9
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == expected
    said = [str(w.message) for w in record if "lie mostly outside" in str(w.message)]
    assert len(said) == (1 if wider else 0), said
    assert len({tuple(t.params.values()) for t in study.trials}) > 5


def test_int_log_step_and_categorical_distributions() -> None:
    fallback = RecordingSampler()

    def objective(trial: optuna.Trial) -> float:
        bs = trial.suggest_int("batch_size", 16, 256, step=16)
        units = trial.suggest_int("n_units", 64, 1024, log=True)
        mom = trial.suggest_float("momentum", 0.5, 0.95, step=0.05)
        wd = trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True)
        layers = trial.suggest_categorical("n_layers", [1, 2, 3, 4])
        dropout = trial.suggest_categorical("dropout", ["0.0", "0.25", "0.5"])
        return bs / 256 + math.log(units) + mom + wd + layers + float(dropout)

    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=1, **FAST))
    study.optimize(objective, n_trials=12)
    assert_params_inside(study)
    assert fallback.asked == []  # every one of them is served by the model
    assert all(isinstance(t.params["batch_size"], int) for t in study.trials)
    assert all(t.params["batch_size"] % 16 == 0 for t in study.trials)
    # numeric categorical choices are explored, not pinned to the projected default
    assert len({t.params["n_layers"] for t in study.trials}) > 1
    assert len({t.params["dropout"] for t in study.trials}) > 1


def test_params_unknown_to_the_model_go_to_the_fallback() -> None:
    fallback = RecordingSampler()

    def objective(trial: optuna.Trial) -> float:
        opt = trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"])
        x = trial.suggest_float("foo", -1.0, 1.0)
        return x**2 + (opt == "adam")

    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with pytest.warns(UserWarning, match="knows 0 of this study's 2 parameters"):
        study.optimize(objective, n_trials=5)
    assert sorted(set(fallback.asked)) == ["foo", "optimizer"]
    assert len(fallback.asked) == 10
    for t in study.trials:
        assert t.user_attrs[ATTR_SOURCE] == "fallback"
        assert ATTR_PRED_MEAN not in t.user_attrs


@pytest.mark.parametrize("known_first", [True, False])
def test_mixed_trial_is_meta_whatever_the_order(known_first: bool) -> None:
    fallback = RecordingSampler()

    def objective(trial: optuna.Trial) -> float:
        if known_first:
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
        else:
            opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return lr + (opt == "sgd")

    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    study.optimize(objective, n_trials=4)
    assert fallback.asked == ["optimizer"] * 4
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 4


def test_unknown_parameters_suggested_first_do_not_send_the_first_trial_away() -> None:
    # Two names the model does not know come before four it does. When `lr` is asked, the
    # trial has shown 1 known name of 3; judged on that, trial 0 went to the fallback with a
    # warning that TPE samples "this study", which the next trials contradicted.
    def objective(trial: optuna.Trial, unknown_first: bool = True) -> float:
        def unknown() -> float:
            act = trial.suggest_categorical("activation", ["relu", "tanh"])
            return float(act == "tanh") + trial.suggest_float("label_smoothing", 0.0, 0.2)

        value = unknown() if unknown_first else 0.0
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        bs = trial.suggest_int("batch_size", 16, 512, log=True)
        mom = trial.suggest_float("momentum", 0.1, 0.99)
        wd = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
        value += 0.0 if unknown_first else unknown()
        return value + (math.log10(lr) + 2.5) ** 2 + math.log2(bs) / 10 + mom + wd

    fallback = RecordingSampler()
    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coverage warning
        study.optimize(objective, n_trials=3)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 3
    assert set(fallback.asked) == {"activation", "label_smoothing"}
    known_first = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    known_first.optimize(lambda t: objective(t, unknown_first=False), n_trials=1)
    served = ("lr", "batch_size", "momentum", "weight_decay")
    assert [study.trials[0].params[k] for k in served] == [
        known_first.trials[0].params[k] for k in served
    ]  # the design's first entry either way


def test_a_first_trial_decides_a_name_of_another_kind_alone() -> None:
    # When `eta` is asked, the shipped XGBoost model knows the names so far better than the
    # MLP model (3 against 1): that `eta` is the fallback's, and so is `momentum` (3 against
    # 2). The decision is not kept: `weight_decay`, asked when the MLP model knows as many of
    # the names (3), takes the design's first entry, as in a study of MLP names alone.
    mlp = ("momentum", "weight_decay", "batch_size")

    def objective(trial: optuna.Trial, xgboost_first: bool = True) -> float:
        value = 0.0
        if xgboost_first:
            value += trial.suggest_int("max_depth", 1, 15)
            value += trial.suggest_float("subsample", 0.1, 1.0)
            value += trial.suggest_float("eta", 1e-3, 0.3, log=True)
        value += trial.suggest_float(mlp[0], 0.1, 0.99)
        value += trial.suggest_float(mlp[1], 1e-5, 1e-1, log=True)
        return value + trial.suggest_int(mlp[2], 16, 512, log=True)

    fallback = RecordingSampler()
    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    study.optimize(objective, n_trials=1)
    assert fallback.asked == ["max_depth", "subsample", "eta", "momentum"]
    assert study.trials[0].user_attrs[ATTR_SOURCE] == "meta"
    alone = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    alone.optimize(lambda t: objective(t, xgboost_first=False), n_trials=1)
    served = mlp[1:]
    assert [study.trials[0].params[k] for k in served] == [
        alone.trials[0].params[k] for k in served
    ]


def test_the_readmes_xgboost_study_gets_no_mlp_learning_rate_in_trial_0() -> None:
    # `n_estimators` then `learning_rate`: 1 known name of 2 is "half", so the coverage rule
    # let trial 0 take the MLP design's learning rate (0.1 for every seed). The shipped XGBoost
    # model knows both names: another kind of study, so the fallback samples it.
    def objective(trial: optuna.Trial) -> float:
        n = trial.suggest_int("n_estimators", 50, 500)
        lr = trial.suggest_float("learning_rate", 1e-3, 0.3, log=True)
        return n / 500 + math.log10(lr) ** 2 + trial.suggest_int("max_depth", 2, 10)

    for seed in range(3):
        fallback = RecordingSampler(seed=seed)
        study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=seed, **FAST))
        study.optimize(objective, n_trials=1)
        assert fallback.asked == ["n_estimators", "learning_rate", "max_depth"]
        assert study.trials[0].user_attrs[ATTR_SOURCE] == "fallback"


def test_a_model_of_ones_own_is_not_second_guessed_by_the_shipped_ones(
    shipped: SurrogateModel,
) -> None:
    # The same study with a model that is not a shipped one (here lcbench-mlp under another
    # name, as `optuna-meta train` would name a user's): the user chose it for such studies,
    # so trial 0 takes its design's learning rate although rbv2-xgboost knows more names.
    def objective(trial: optuna.Trial) -> float:
        n = trial.suggest_int("n_estimators", 50, 500)
        lr = trial.suggest_float("learning_rate", 1e-3, 0.3, log=True)
        return n / 500 + math.log10(lr) ** 2 + trial.suggest_int("max_depth", 2, 10)

    own = dataclasses.replace(shipped, manifest={**shipped.manifest, "name": "my-mlp"})
    fallback = RecordingSampler(seed=0)
    study = optuna.create_study(sampler=MetaSampler(model=own, fallback=fallback, seed=0, **FAST))
    study.optimize(objective, n_trials=1)
    assert "learning_rate" not in fallback.asked
    assert study.trials[0].user_attrs[ATTR_SOURCE] == "meta"


def test_names_sent_to_the_fallback_do_not_make_another_model_look_better() -> None:
    # Fine-tuning with AdamW: `param_mapping={"learning_rate": None}` as the README advises.
    # lcbench-mlp-short knows `learning_rate` by name too, and counting it made (1) trial 0
    # look like another kind of study and (2) the warning send the user to lcbench-mlp-short,
    # whose warning sent them back.
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-4, log=True)
        wd = trial.suggest_float("weight_decay", 1e-5, 0.1, log=True)
        return lr * 1e3 - wd - trial.suggest_float("warmup_ratio", 0.0, 0.2)

    for model in ("lcbench-mlp", "lcbench-mlp-short"):
        sampler = MetaSampler(model=model, param_mapping={"learning_rate": None}, seed=0, **FAST)
        study = optuna.create_study(sampler=sampler)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            study.optimize(objective, n_trials=2)
        assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta", "fallback"]
        said = [str(w.message) for w in record if "too few to help" in str(w.message)]
        assert len(said) == 1
        assert "param_mapping sends learning_rate to the fallback" in said[0]
        assert "The shipped model" not in said[0], said[0]


def test_a_known_parameter_served_too_little_does_not_make_the_others_repeat() -> None:
    # `batch_size` 256..4096 lies mostly outside the model's 16..512, so the fallback samples
    # it. Proposals that differed only there counted as new configurations, and the served
    # `lr` and `momentum` then repeated trial after trial (12 of 14 trials at one pair).
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        mom = trial.suggest_float("momentum", 0.1, 0.99)
        bs = trial.suggest_int("batch_size", 256, 4096, log=True)
        return (math.log10(lr) + 2.5) ** 2 + (mom - 0.9) ** 2 + bs / 1e4

    for seed in (0, 1):
        fallback = RecordingSampler(seed=seed)
        study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=seed, **FAST))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the range warning
            study.optimize(objective, n_trials=14)
        assert fallback.asked == ["batch_size"] * 14
        assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}
        pairs = {(t.params["lr"], t.params["momentum"]) for t in study.trials}
        assert len(pairs) == 14


def test_a_study_the_model_barely_knows_goes_to_the_fallback_with_one_warning() -> None:
    # An XGBoost study: the MLP model knows only `eta` (through its learning-rate alias).
    fallback = RecordingSampler()

    def objective(trial: optuna.Trial) -> float:
        eta = trial.suggest_float("eta", 1e-3, 1.0, log=True)
        depth = trial.suggest_int("max_depth", 1, 15)
        rounds = trial.suggest_int("n_estimators", 10, 1000, log=True)
        return eta * depth + rounds

    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with pytest.warns(UserWarning, match=r"knows 1 of this study's 3 parameters \(eta\)") as rec:
        study.optimize(objective, n_trials=5)
    assert sum("of this study's" in str(w.message) for w in rec) == 1
    assert any("MetaSampler(model='rbv2-xgboost')" in str(w.message) for w in rec)
    # Trial 0 is asked `eta` before the other names exist: the model serves it.
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] + ["fallback"] * 4
    assert fallback.asked.count("eta") == 4
    assert all(ATTR_PRED_MEAN not in t.user_attrs for t in study.trials)


def test_the_xgboost_model_serves_a_conditional_xgboost_study() -> None:
    fallback = RecordingSampler()

    def objective(trial: optuna.Trial) -> float:
        booster = trial.suggest_categorical("booster", ["gbtree", "gblinear"])
        eta = trial.suggest_float("eta", 0.01, 0.3, log=True)
        rounds = trial.suggest_int("n_estimators", 50, 500, log=True)
        if booster == "gbtree":
            depth = trial.suggest_int("max_depth", 2, 10)
            sub = trial.suggest_float("subsample", 0.5, 1.0)
            return eta * depth * sub + 1.0 / rounds
        return eta + trial.suggest_float("lambda", 1e-3, 10.0, log=True) + 1.0 / rounds

    sampler = MetaSampler(model="rbv2-xgboost", fallback=fallback, seed=0, **FAST)
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every name is known: no coverage warning
        study.optimize(objective, n_trials=12)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 12
    assert fallback.asked == []
    for t in study.trials:
        assert 0.01 <= t.params["eta"] <= 0.3 and 50 <= t.params["n_estimators"] <= 500
        assert set(t.params) in (
            {"booster", "eta", "n_estimators", "max_depth", "subsample"},
            {"booster", "eta", "n_estimators", "lambda"},
        )
    assert ATTR_PRED_MEAN in study.trials[-1].user_attrs


def test_a_barely_known_study_is_sampled_exactly_as_the_fallback_would() -> None:
    # Relative (multivariate) sampling goes to the fallback too, not only suggest by suggest:
    # after TPE's 10 random startup trials its multivariate proposals must be the same.
    # Trial 0 has no finished trial to judge the study by, but when `eta` is asked the names
    # so far are better known to the shipped XGBoost model (3 of 3) than to the MLP model
    # (1): an XGBoost study, whose `eta` is the fallback's too (session 31; it was the MLP
    # design's learning rate), so the study is TPE's from its first trial.
    def objective(trial: optuna.Trial) -> float:
        depth = trial.suggest_int("max_depth", 1, 15)
        sub = trial.suggest_float("subsample", 0.1, 1.0)
        eta = trial.suggest_float("eta", 1e-3, 1.0, log=True)  # asked with 1 of 3 known
        return (depth - 6) ** 2 + math.log(eta) ** 2 + sub

    fallback = optuna.samplers.TPESampler(seed=0)  # a given fallback keeps its own streams
    meta = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with pytest.warns(UserWarning, match="knows 1 of this study's 3"):
        meta.optimize(objective, n_trials=16)
    tpe = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    tpe.optimize(objective, n_trials=16)
    assert [t.params for t in meta.trials] == [t.params for t in tpe.trials]
    sources = [t.user_attrs[ATTR_SOURCE] for t in meta.trials]
    assert sources == ["fallback"] * 16


def test_design_entries_of_another_branch_are_skipped_when_the_study_does_not_tune_it() -> None:
    # The study runs XGBoost's default trees (no `booster`): the model's `gblinear` entries
    # (entry 5: 8 rounds at learning rate ~0.0009) mean little for it and are not tried.
    model = SurrogateModel.load("rbv2-xgboost")
    linear = [e for e in model.initial_design if e["booster"] != model.defaults["booster"]]
    assert linear  # the shipped design has some

    def objective(trial: optuna.Trial) -> float:
        rounds = trial.suggest_int("n_estimators", 5, 3000, log=True)
        eta = trial.suggest_float("eta", 1e-4, 1.0, log=True)
        depth = trial.suggest_int("max_depth", 1, 15)
        return math.log(eta) ** 2 + depth / rounds

    study = optuna.create_study(sampler=MetaSampler(model=model, seed=0, **FAST))
    study.optimize(objective, n_trials=len(model.initial_design))
    tried = {(t.params["n_estimators"], round(t.params["eta"], 6)) for t in study.trials}
    for e in linear:
        key = (round(e["n_estimators"]), round(e["learning_rate"], 6))
        assert key not in tried
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def test_two_known_parameters_are_served_beside_unknown_ones() -> None:
    fallback = RecordingSampler()

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        bs = trial.suggest_int("batch_size", 16, 512, log=True)
        warmup = trial.suggest_float("warmup_ratio", 0.0, 0.2)
        smoothing = trial.suggest_float("label_smoothing", 0.0, 0.2)
        sched = trial.suggest_categorical("scheduler", ["cosine", "linear"])
        return lr * bs + warmup + smoothing + (sched == "linear")

    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coverage warning
        study.optimize(objective, n_trials=4)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 4
    assert "lr" not in fallback.asked and "batch_size" not in fallback.asked


def test_a_sampler_pickled_before_the_coverage_rule_loads() -> None:
    state = MetaSampler(seed=0).__getstate__()
    del state["_warned_coverage"]
    sampler = MetaSampler.__new__(MetaSampler)
    sampler.__setstate__(state)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        return sum(trial.suggest_float(n, 0.001, 1.0) for n in ("eta", "gamma", "subsample"))

    with pytest.warns(UserWarning, match="knows 1 of this study's 3"):
        study.optimize(objective, n_trials=3)


def test_conditional_define_by_run_space() -> None:
    fallback = RecordingSampler()

    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("optimizer", ["sgd", "adam"])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        if kind == "sgd":
            mom = trial.suggest_float("momentum", 0.1, 0.99)
            return lr * mom
        if trial.number % 2:
            return lr + trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
        return lr

    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=2, **FAST))
    study.optimize(objective, n_trials=12)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 12
    assert_params_inside(study)
    assert set(fallback.asked) == {"optimizer"}
    with_momentum = [t for t in study.trials if "momentum" in t.params]
    assert 0 < len(with_momentum) < len(study.trials)
    assert all(t.params["optimizer"] == "sgd" for t in with_momentum)
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def _model_families(trial: optuna.Trial) -> float:
    """A conditional study: an SVM branch the MLP model does not know, an MLP branch it does."""
    if trial.suggest_categorical("classifier", ["svm", "mlp"]) == "svm":
        c = trial.suggest_float("svm_c", 1e-3, 1e3, log=True)
        return abs(math.log10(c)) + trial.suggest_float("svm_gamma", 1e-4, 1e1, log=True)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    return abs(math.log10(lr) + 2.5) + trial.suggest_float("dropout", 0.0, 0.5)


def test_a_trial_on_a_branch_no_finished_trial_took_is_judged_by_its_own_names() -> None:
    """Trials 0-1 take the SVM branch (0 of 3 known names: the fallback's); trial 2 takes the
    MLP branch, which no finished trial took: it is served by the model as trial 0 of an
    MLP-only study is (the design's first entry), not sent to the fallback on the SVM trials'
    account. Later SVM trials stay the fallback's."""
    fallback = RecordingSampler()
    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with pytest.warns(UserWarning, match="knows 0 of this study's 3 parameters"):
        for branch in ("svm", "svm", "mlp", "svm", "mlp"):
            study.enqueue_trial({"classifier": branch})  # one at a time: none waits
            study.optimize(_model_families, n_trials=1)
    sources = [t.user_attrs.get(ATTR_SOURCE) for t in study.trials]
    assert sources == ["fallback", "fallback", "meta", "fallback", "meta"]
    assert fallback.asked.count("lr") == 0 and fallback.asked.count("svm_c") == 3
    mlp_only = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    mlp_only.enqueue_trial({"classifier": "mlp"})
    mlp_only.optimize(_model_families, n_trials=1)
    first = {k: v for k, v in mlp_only.trials[0].params.items() if k != "classifier"}
    assert {k: study.trials[2].params[k] for k in first} == first


def test_param_mapping_explicit_and_none(shipped: SurrogateModel) -> None:
    fallback = RecordingSampler()
    sampler = MetaSampler(
        fallback=fallback,
        param_mapping={"alpha": "learning_rate", "lr": None},
        seed=0,
        **FAST,
    )

    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_float("alpha", 1e-4, 1e-1, log=True)  # no alias: mapped by hand
        b = trial.suggest_float("lr", 1e-4, 1e-1, log=True)  # an alias, switched off
        return a + b

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=4)
    assert fallback.asked == ["lr"] * 4
    first = study.trials[0].params["alpha"]
    assert first == pytest.approx(shipped.defaults["learning_rate"])
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def test_param_mapping_to_a_missing_model_param_falls_back_with_a_clear_warning() -> None:
    sampler = MetaSampler(param_mapping={"lr": "no_such_param"}, seed=0, **FAST)
    dist = FloatDistribution(1e-4, 1e-1, log=True)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return lr + trial.suggest_float("dropout", 0.0, 0.5)

    study = optuna.create_study(sampler=sampler)
    with pytest.warns(UserWarning, match="'lr'.*'no_such_param'.*learning_rate") as record:
        study.optimize(objective, n_trials=3)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert sum("no_such_param" in str(w.message) for w in record) == 1  # said once
    # Only the badly mapped parameter falls back: "dropout" is still served by the model.
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 3
    assert all(dist._contains(t.params["lr"]) for t in study.trials)


def test_a_conditional_study_never_repeats_a_configuration() -> None:
    # A trial on XGBoost's gblinear branch lacks the tree parameters; a proposal that agrees
    # with it on all of its own parameters repeats it, whatever it says about the others.
    # Here only a few boosting rounds are feasible and more rounds score better, so the
    # surrogate keeps being drawn to the same near-feasible gblinear configuration.
    def objective(trial: optuna.Trial) -> float:
        booster = trial.suggest_categorical("booster", ["gbtree", "gblinear", "dart"])
        rounds = trial.suggest_int("n_estimators", 7, 2981, log=True)
        sub = trial.suggest_float("subsample", 0.1, 1.0)
        if booster != "gblinear":
            trial.suggest_int("max_depth", 1, 15)
        trial.set_constraint("rounds", rounds - 6)  # never feasible
        return math.log(rounds) + sub

    study = optuna.create_study(
        direction="maximize", sampler=MetaSampler(model="rbv2-xgboost", seed=0, **FAST)
    )
    study.optimize(objective, n_trials=10)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 10
    configs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configs)) == len(configs), configs


def _lr_dropout(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    return (math.log10(lr) + 2.5) ** 2 + (dropout - 0.2) ** 2


def _run(sampler: MetaSampler, objective: Any, n: int = 4) -> list[FrozenTrial]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n)
    return study.trials


def test_fixed_params_condition_the_surrogate_on_the_values_the_user_trains_with(
    shipped: SurrogateModel,
) -> None:
    # The study tunes lr and dropout; the user's code fixes batch size and depth. The model
    # keeps only design entries and optima at its defaults there: an entry with another batch
    # size is, rightly, judged at the fixed one, which may change the study's course.
    assert shipped.defaults["batch_size"] == 16 and shipped.defaults["num_layers"] == 5

    def at_default(config: dict[str, Any]) -> bool:
        return config["batch_size"] == 16 and config["num_layers"] == 5

    model = dataclasses.replace(
        shipped,
        initial_design=[c for c in shipped.initial_design if at_default(c)],
        task_optima=[c for c in shipped.task_optima if at_default(c)],
    )
    assert len(model.initial_design) >= 8 and len(model.task_optima) >= 10
    plain = _run(MetaSampler(model, seed=0, **FAST), _lr_dropout)
    at_defaults = _run(
        MetaSampler(model, fixed_params={"batch_size": 16, "n_layers": 5}, seed=0, **FAST),
        _lr_dropout,
    )
    elsewhere = _run(
        MetaSampler(model, fixed_params={"batch_size": 512, "n_layers": 1}, seed=0, **FAST),
        _lr_dropout,
    )
    # Fixing the values the model assumes anyway tries the same configurations ...
    assert [t.params for t in at_defaults] == [t.params for t in plain]
    # ... other values change what the surrogate predicts, and so the study's course.
    assert elsewhere[0].params == plain[0].params  # design entry 0 in both
    assert [t.user_attrs for t in elsewhere] != [t.user_attrs for t in plain]
    assert {t.user_attrs[ATTR_SOURCE] for t in elsewhere} == {"meta"}


def test_a_suggested_parameter_ignores_its_fixed_value() -> None:
    def objective(trial: optuna.Trial) -> float:
        return _lr_dropout(trial) + trial.suggest_int("batch_size", 16, 512, log=True) / 1e3

    with pytest.warns(UserWarning, match=r"fixed_params names \['batch_size'\].*suggest"):
        fixed = _run(MetaSampler(fixed_params={"batch_size": 512}, seed=0, **FAST), objective)
    # Trial 0 proposes before batch_size is suggested, so it takes the fixed value; from then
    # on the study's own values count.
    assert fixed[0].params["batch_size"] == 512
    assert any(t.params["batch_size"] != 512 for t in fixed[1:])


def test_fixed_params_the_model_cannot_use_are_ignored_with_a_warning() -> None:
    sampler = MetaSampler(fixed_params={"no_such_param": 3, "n_layers": "deep"}, seed=0, **FAST)
    with pytest.warns(UserWarning) as record:
        trials = _run(sampler, _lr_dropout, n=2)
    messages = [str(w.message) for w in record]
    assert any("does not know 'no_such_param'" in m for m in messages), messages
    assert any("n_layers='deep' cannot be represented" in m for m in messages), messages
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert {t.user_attrs[ATTR_SOURCE] for t in trials} == {"meta"}


def _xgb_linear(trial: optuna.Trial) -> float:
    rounds = trial.suggest_int("n_estimators", 7, 2981, log=True)
    lam = trial.suggest_float("reg_lambda", 9.1e-4, 1097.0, log=True)
    alpha = trial.suggest_float("reg_alpha", 9.1e-4, 1097.0, log=True)
    sub = trial.suggest_float("subsample", 0.1, 1.0)
    return math.log(rounds) + math.log(lam) ** 2 / 10 + math.log(alpha) ** 2 / 10 + sub


def test_a_fixed_branch_takes_the_design_entries_of_that_branch() -> None:
    # XGBoost's design has two gblinear entries; a study fixed on gblinear tries those first.
    model = SurrogateModel.load("rbv2-xgboost")
    linear = [e for e in model.initial_design if e["booster"] == "gblinear"]
    assert len(linear) == 2
    trials = _run(
        MetaSampler(model=model, fixed_params={"booster": "gblinear"}, seed=0, **FAST),
        _xgb_linear,
        n=2,
    )
    expected = {(e["n_estimators"], round(e["reg_lambda"], 6)) for e in linear}
    tried = {(t.params["n_estimators"], round(t.params["reg_lambda"], 6)) for t in trials}
    assert tried == expected
    # Without fixed_params the model's default branch (dart) is assumed and they are skipped.
    plain = _run(MetaSampler(model=model, seed=0, **FAST), _xgb_linear, n=2)
    assert not expected & {
        (t.params["n_estimators"], round(t.params["reg_lambda"], 6)) for t in plain
    }


def test_a_fixed_branch_without_entries_keeps_the_default_branch_entries() -> None:
    # No design entry runs gbtree: the dart ones (the model's default branch) are kept,
    # clipped onto gbtree, rather than leaving the study without a design.
    model = SurrogateModel.load("rbv2-xgboost")
    assert all(e["booster"] != "gbtree" for e in model.initial_design)
    fixed = _run(
        MetaSampler(model=model, fixed_params={"booster": "gbtree"}, seed=0, **FAST), _xgb_linear
    )
    plain = _run(MetaSampler(model=model, seed=0, **FAST), _xgb_linear)
    assert fixed[0].params == plain[0].params  # design entry 0 (dart) in both
    dart = {
        (e["n_estimators"], round(e["reg_lambda"], 6))
        for e in model.initial_design
        if e["booster"] == "dart"
    }
    assert (fixed[1].params["n_estimators"], round(fixed[1].params["reg_lambda"], 6)) in dart


def test_fixed_params_survive_pickling() -> None:
    import pickle

    sampler = MetaSampler(fixed_params={"batch_size": 512, "n_layers": 1}, seed=0, **FAST)
    _run(sampler, _lr_dropout, n=1)
    clone = pickle.loads(pickle.dumps(sampler))
    assert clone.fixed_params == {"batch_size": 512, "n_layers": 1}
    a = _run(sampler, _lr_dropout)
    b = _run(clone, _lr_dropout)
    assert [t.user_attrs for t in a] == [t.user_attrs for t in b]


def test_a_sampler_pickled_before_fixed_params_loads() -> None:
    state = MetaSampler(seed=0, **FAST).__getstate__()
    for key in ("fixed_params", "_warned_fixed", "_name_maps", "_model_failed", "_warned_ranges"):
        del state[key]
    state["_name_map"] = {}  # before session 14 one map served every study
    sampler = MetaSampler.__new__(MetaSampler)
    sampler.__setstate__(state)
    trials = _run(sampler, _lr_dropout, n=2)
    assert [t.user_attrs[ATTR_SOURCE] for t in trials] == ["meta"] * 2


def test_fixed_params_that_are_not_a_mapping_are_a_clear_error() -> None:
    with pytest.raises(TypeError, match="fixed_params must be a mapping"):
        MetaSampler(fixed_params=[("batch_size", 128)])  # type: ignore[arg-type]


def test_a_moved_range_is_searched_where_it_is_now() -> None:
    # The user narrows momentum and batch size to new ranges after a first batch of trials:
    # proposals come from the new ranges, not the oldest trials' ranges clipped into them.
    def make(m_lo: float, m_hi: float, b_lo: int, b_hi: int) -> Any:
        def objective(trial: optuna.Trial) -> float:
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            m = trial.suggest_float("momentum", m_lo, m_hi)
            bs = trial.suggest_int("batch_size", b_lo, b_hi, log=True)
            return abs(math.log10(lr) + 2.5) + 3 * abs(m - 0.85) + abs(math.log2(bs) - 7) / 5

        return objective

    study = optuna.create_study(sampler=MetaSampler(seed=0, fallback_every=0, **FAST))
    study.optimize(make(0.1, 0.3, 16, 32), n_trials=10)
    study.optimize(make(0.7, 0.99, 64, 512), n_trials=12)
    new = study.trials[10:]
    assert {t.user_attrs[ATTR_SOURCE] for t in new} == {"meta"}
    # Searching the old ranges clipped into the new ones would put every proposal at their
    # image, momentum 0.7 and batch size 64. The surrogate's prior favours high momentum, so
    # many proposals sit at 0.99; what matters is that they spread over the new ranges.
    assert sum(t.params["momentum"] == 0.7 for t in new) <= len(new) // 2
    assert sum(t.params["batch_size"] == 64 for t in new) <= len(new) // 2
    assert len({round(t.params["momentum"], 3) for t in new}) >= 3
    assert len({t.params["batch_size"] for t in new}) > 3


def test_a_sampler_reused_for_a_study_with_other_names_serves_it() -> None:
    # Study A calls the learning rate `lr`, study B `learning_rate`: B must not find the
    # model's `learning_rate` taken by A's name.
    def objective(lr_name: str, bs_name: str) -> Any:
        def f(trial: optuna.Trial) -> float:
            lr = trial.suggest_float(lr_name, 1e-4, 1e-1, log=True)
            bs = trial.suggest_int(bs_name, 16, 512, log=True)
            return abs(math.log10(lr) + 2.5) + bs / 1e3

        return f

    shared = MetaSampler(seed=0, **FAST)
    optuna.create_study(sampler=shared).optimize(objective("lr", "batch_size"), n_trials=3)
    study = optuna.create_study(sampler=shared)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "knows 0 of this study's parameters" warning
        study.optimize(objective("learning_rate", "per_device_train_batch_size"), n_trials=3)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["meta"] * 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": 123}, TypeError, "model must be a shipped model name"),
        ({"model": None}, TypeError, "model must be a shipped model name"),
        ({"param_mapping": [("lr", "learning_rate")]}, TypeError, "param_mapping must be a map"),
        ({"task": "big"}, TypeError, "task must be a mapping"),
        ({"n_meta_trials": "10"}, TypeError, "n_meta_trials must be None or an int >= 0"),
        ({"n_design_trials": -3}, ValueError, "n_design_trials must be None or an int >= 0"),
        ({"n_candidates": 0}, ValueError, "n_candidates must be an int >= 1"),
        ({"n_candidates": None}, TypeError, "n_candidates must be an int >= 1"),
        (
            {"fallback": optuna.samplers.TPESampler},
            TypeError,
            "fallback must be an Optuna sampler instance",
        ),
        (
            {"fallback": optuna.samplers.GridSampler({"lr": [1e-3, 1e-2]})},
            ValueError,
            "GridSampler cannot be MetaSampler's fallback",
        ),
    ],
)
def test_bad_arguments_are_clear_errors_at_construction(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        MetaSampler(**kwargs)


def test_partial_fixed_sampler_around_meta_never_repeats_a_configuration() -> None:
    # PartialFixedSampler puts momentum back to 0.9 after MetaSampler proposed: proposals
    # that differ only in momentum would repeat a trial, so MetaSampler treats it as fixed.
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        bs = trial.suggest_int("batch_size", 16, 512, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        momentum = trial.suggest_float("momentum", 0.1, 0.99)
        return lr * 100 + dropout + momentum + bs / 1e4

    meta = MetaSampler(seed=0, fallback_every=0, **FAST)
    sampler = optuna.samplers.PartialFixedSampler({"momentum": 0.9}, meta)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=15)
    configs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configs)) == len(configs)
    assert {t.params["momentum"] for t in study.trials} == {0.9}
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def test_range_coverage_in_the_models_scale() -> None:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from optuna_meta.sampler._model_state import range_coverage

    model_lr = FloatDistribution(1e-4, 1e-1, log=True)
    assert range_coverage(FloatDistribution(1e-3, 1e-2, log=True), model_lr) == 1.0
    assert range_coverage(FloatDistribution(1e-6, 1e-2, log=True), model_lr) == pytest.approx(0.5)
    assert range_coverage(FloatDistribution(1.0, 10.0), model_lr) == 0.0
    assert range_coverage(FloatDistribution(0.05, 0.05), model_lr) == 1.0
    model_bs = IntDistribution(16, 512, log=True)
    assert range_coverage(CategoricalDistribution([8, 32, 64, 1024]), model_bs) == 0.5
    # choices the model cannot take are not covered: strings, booleans, None (a reviewer's
    # scikit-learn study: learning_rate="constant" counted as served and took the model's name)
    assert range_coverage(CategoricalDistribution(["a", "b"]), model_bs) == 0.0
    assert range_coverage(CategoricalDistribution([True, False]), model_bs) == 0.0
    assert range_coverage(CategoricalDistribution([None, "32", 64, 1e4]), model_bs) == 0.5
    model_booster = CategoricalDistribution(["gbtree", "gblinear", "dart"])
    assert range_coverage(CategoricalDistribution(["dart", "hist"]), model_booster) == 0.5
    assert range_coverage(FloatDistribution(0.0, 1.0), model_booster) == 1.0
    model_m = FloatDistribution(0.1, 0.99)
    assert range_coverage(FloatDistribution(0.0, 0.99), model_m) == pytest.approx(0.89 / 0.99)


def test_a_range_mostly_outside_the_models_goes_to_the_fallback_with_one_warning() -> None:
    # The model knows learning rates 1e-4..0.1; this study's 1e-7..10 is mostly elsewhere,
    # so TPE samples it while the surrogate serves dropout and batch size.
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-7, 10.0, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        bs = trial.suggest_int("batch_size", 4, 512, log=True)  # 82% known: served, warned
        return (math.log10(lr)) ** 2 + dropout + bs / 1e3

    fallback = RecordingSampler()
    study = optuna.create_study(sampler=MetaSampler(fallback=fallback, seed=0, **FAST))
    with pytest.warns(UserWarning) as record:
        study.optimize(objective, n_trials=6)
    messages = [str(w.message) for w in record if "of the range of" in str(w.message)]
    assert len(messages) == 2, messages
    assert any("'lr'" in m and "RecordingSampler samples 'lr'" in m for m in messages)
    assert any("'batch_size'" in m and "inside [16, 512] only" in m for m in messages)
    assert set(fallback.asked) == {"lr"} and len(fallback.asked) == 6
    assert all(16 <= t.params["batch_size"] for t in study.trials)  # the meta phase's share
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"meta"}


def test_proposals_keep_a_minimum_distance_from_tried_configurations() -> None:
    # A smooth, noise-free objective in a small box: the surrogate's noise term left a little
    # expected improvement next to the best trial, and it proposed that point again and again
    # up to rounding. Proposals now keep MIN_SEPARATION (model units) from tried ones.
    import numpy as np

    from optuna_meta.sampler._sampler import MIN_SEPARATION

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-3, 1e-2, log=True)
        momentum = trial.suggest_float("momentum", 0.8, 0.95)
        return abs(math.log10(lr) + 2.5) + abs(momentum - 0.9)

    sampler = MetaSampler(seed=0, **FAST)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=30)
    state = sampler._model_state()
    X = np.array([state.encode(sampler._to_model_params(state, t.params)) for t in study.trials])
    gaps = np.max(np.abs(X[:, None, :] - X[None, :, :]), axis=2)
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() >= MIN_SEPARATION * 0.999, gaps.min()


def test_a_shortened_design_still_takes_the_entries_of_a_fixed_branch() -> None:
    # n_design_trials counts entries on the study's branch: with booster fixed at gblinear and
    # a 2-entry design, the two gblinear entries (6th and 7th of the design) are tried.
    model = SurrogateModel.load("rbv2-xgboost")
    linear = [e for e in model.initial_design if e["booster"] == "gblinear"]
    sampler = MetaSampler(
        model=model, fixed_params={"booster": "gblinear"}, n_design_trials=2, seed=0, **FAST
    )
    trials = _run(sampler, _xgb_linear, n=2)
    expected = {(e["n_estimators"], round(e["reg_lambda"], 6)) for e in linear}
    assert {(t.params["n_estimators"], round(t.params["reg_lambda"], 6)) for t in trials} == (
        expected
    )


def test_a_study_entirely_outside_the_models_ranges_is_the_fallbacks() -> None:
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-9, 1e-6, log=True)
        bs = trial.suggest_int("batch_size", 2000, 8000, log=True)
        return lr + bs

    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=4)
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["fallback"] * 4
    assert not any(ATTR_PRED_MEAN in t.user_attrs for t in study.trials)
    assert any("lie mostly outside" in str(w.message) for w in record)


def test_one_sampler_asked_by_two_studies_in_turn_keeps_them_apart() -> None:
    # Trials of two in-memory studies share ids (0, 1, ...) and the studies name their
    # parameters differently: neither the names nor the cached proposals may leak across.
    sampler = MetaSampler(seed=0, **FAST)
    a, b = optuna.create_study(sampler=sampler), optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "knows 0 of this study's parameters" warning
        for _ in range(3):
            ta, tb = a.ask(), b.ask()
            ta.suggest_float("lr", 1e-4, 1e-1, log=True)
            ta.suggest_int("batch_size", 16, 512, log=True)
            tb.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
            tb.suggest_int("per_device_train_batch_size", 16, 512, log=True)
            a.tell(ta, 1.0)
            b.tell(tb, 1.0)
    for study in (a, b):
        assert [t.user_attrs.get(ATTR_SOURCE) for t in study.trials] == ["meta"] * 3
    assert [list(t.params.values()) for t in a.trials] == [
        list(t.params.values()) for t in b.trials
    ]  # the same names in model terms, the same history: the same proposals


def test_studies_of_one_name_on_storages_that_come_and_go_keep_their_own_names() -> None:
    # Each in-memory study gets a fresh storage; a collected storage's address may be reused,
    # so name maps keyed by it must go with it (else "lr" claims learning_rate for "bs" ...).
    import gc

    def a(t: optuna.Trial) -> float:
        return t.suggest_float("lr", 1e-4, 1e-1, log=True) + t.suggest_int("batch_size", 16, 512)

    def b(t: optuna.Trial) -> float:
        lr = t.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        return lr + t.suggest_int("bs", 16, 512)

    sampler = MetaSampler(seed=0, **FAST)
    sources = []
    for objective in [a, b] * 10:
        study = optuna.create_study(study_name="exp", sampler=sampler)
        study.optimize(objective, n_trials=2)
        sources += [t.user_attrs.get(ATTR_SOURCE) for t in study.trials]
        del study
        gc.collect()
    assert sources == ["meta"] * 40
    assert len(sampler._name_maps) <= 2  # the dead studies' maps are gone


def test_a_running_trials_partial_names_do_not_judge_the_study() -> None:
    # Another worker's trial has suggested only `foo` so far, and nothing has finished: the
    # study is not judged on names yet, so the trial being sampled takes the design's `eta`.
    # Once a trial has finished, its names judge the study (1 of 3 known: the fallback's).
    def objective(trial: optuna.Trial) -> float:
        return (
            trial.suggest_float("foo", 0, 1)
            + trial.suggest_int("bar", 1, 10)
            + (trial.suggest_float("eta", 1e-3, 0.1, log=True))
        )

    study = optuna.create_study(sampler=MetaSampler(seed=0, **FAST))
    running = study.ask()
    running.suggest_float("foo", 0, 1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trial = study.ask()
        study.tell(trial, objective(trial))
        assert not [w for w in record if "too few to help" in str(w.message)]
        trial = study.ask()
        study.tell(trial, objective(trial))
    said = [str(w.message) for w in record if "too few to help" in str(w.message)]
    assert len(said) == 1 and "knows 1 of this study's 3 parameters" in said[0], said
    sources = [t.user_attrs.get(ATTR_SOURCE) for t in study.trials[1:]]
    assert sources == ["meta", "fallback"]


def _sources(sampler: MetaSampler, n_trials: int) -> list[str]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: (
            (math.log10(t.suggest_float("lr", 1e-4, 1e-1, log=True)) + 2.5) ** 2
            + (t.suggest_float("momentum", 0.1, 0.99) - 0.6) ** 2
        ),
        n_trials=n_trials,
    )
    return [t.user_attrs[ATTR_SOURCE] for t in study.trials]


def test_after_the_design_every_fifth_trial_goes_to_the_fallback():
    """A hedge against a prior that does not fit the study (DEFAULT_FALLBACK_EVERY)."""
    sources = _sources(MetaSampler(seed=0, **FAST), 21)
    fallback = [i for i, s in enumerate(sources) if s == "fallback"]
    assert fallback == [14, 19]  # the 10-entry design first, then trials 14, 19, ...
    assert _sources(MetaSampler(seed=0, fallback_every=0, **FAST), 21) == ["meta"] * 21
    # The fixed schedule (the fallback's trials here improve the study often enough that the
    # adaptive rule would give it more turns; that rule has its own tests below).
    every3 = _sources(MetaSampler(seed=0, fallback_every=3, adaptive_fallback=False, **FAST), 18)
    assert [i for i, s in enumerate(every3) if s == "fallback"] == [11, 14, 17]
    no_design = _sources(MetaSampler(seed=0, n_design_trials=0, **FAST), 10)
    assert [i for i, s in enumerate(no_design) if s == "fallback"] == [4, 9]


def _source_driven(sampler: MetaSampler, n_trials: int, fallback_improves: bool) -> list[str]:
    """Sources of a study whose objective rewards one source: each trial of it beats the last."""
    study = optuna.create_study(direction="minimize", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_float("momentum", 0.1, 0.99)
        # The sampler wrote the source before the objective runs; the trial's own view is a
        # snapshot taken earlier, so read it from the storage.
        source = study._storage.get_trial(trial._trial_id).user_attrs[ATTR_SOURCE]
        rewarded = "fallback" if fallback_improves else "meta"
        return -float(trial.number) if source == rewarded else 1e3

    study.optimize(objective, n_trials=n_trials)
    return [t.user_attrs[ATTR_SOURCE] for t in study.trials]


def test_the_fallback_takes_every_other_trial_while_it_improves_the_study_faster():
    """adaptive_fallback: trials 14 and 19 (the fallback's) improve, the surrogate's never."""
    sources = _source_driven(MetaSampler(seed=0, **FAST), 26, fallback_improves=True)
    # From trial 20 on the fallback leads: every other trial, and its own turns, are its.
    assert [i for i, s in enumerate(sources) if s == "fallback"] == [14, 19, 21, 23, 24, 25]
    fixed = _source_driven(
        MetaSampler(seed=0, adaptive_fallback=False, **FAST), 26, fallback_improves=True
    )
    assert [i for i, s in enumerate(fixed) if s == "fallback"] == [14, 19, 24]


def test_the_surrogate_keeps_its_turns_while_its_trials_improve_the_study():
    sources = _source_driven(MetaSampler(seed=0, **FAST), 26, fallback_improves=False)
    assert [i for i, s in enumerate(sources) if s == "fallback"] == [14, 19, 24]


def test_whether_the_fallback_leads_is_decided_once_per_trial():
    """Trials that finish while one is sampled (other workers') do not split it in two."""
    sampler = MetaSampler(seed=0, fallback=RandomSampler(seed=0), **FAST)  # no relative params
    study = optuna.create_study(direction="minimize", sampler=sampler)
    space = {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "momentum": FloatDistribution(0.1, 0.99),
    }

    def add(value: float, source: str) -> None:
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 1e-3, "momentum": 0.5},
                distributions=space,
                value=value,
                user_attrs={ATTR_SOURCE: source},
            )
        )

    for i in range(21):  # the fallback's trials 14 and 19 improve, the surrogate's never
        add(-float(i), "fallback") if i in (14, 19) else add(1e3, "meta")
    trial = study.ask()  # trial 21, one of those the fallback takes while it leads
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)  # the fallback leads: decided here
    for i in range(31):  # then the surrogate's trials improve, often enough for it to lead
        add(-100.0 - i, "meta")
    trial.suggest_float("momentum", 0.1, 0.99)
    assert study._storage.get_trial(trial._trial_id).user_attrs[ATTR_SOURCE] == "fallback"
    later = study.ask()  # trial 53: another of the fallback's while it leads, but it does not
    later.suggest_float("lr", 1e-4, 1e-1, log=True)
    assert study._storage.get_trial(later._trial_id).user_attrs[ATTR_SOURCE] == "meta"


def test_the_lead_is_read_once_per_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    """It is asked for every parameter; the study's attrs are read for the first only."""
    from optuna_meta.sampler import _sampler

    calls: list[int] = []
    real = _sampler._fallback_leads

    def counted(trials: Any, *args: Any, **kwargs: Any) -> bool:
        calls.append(len(trials))
        return real(trials, *args, **kwargs)

    monkeypatch.setattr(_sampler, "_fallback_leads", counted)
    _source_driven(MetaSampler(seed=0, **FAST), 20, fallback_improves=False)
    # The trials the fallback would take while leading (odd numbers from 10 to 19, less its
    # own turn 19), one read each (of the trials so far and the running one).
    assert calls == [12, 14, 16, 18]


def _done(number: int, value: float, source: str | None, **kwargs: Any) -> FrozenTrial:
    attrs = {} if source is None else {ATTR_SOURCE: source}
    return optuna.trial.create_trial(value=value, user_attrs=attrs, **kwargs)


def _numbered(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    for i, t in enumerate(trials):
        t.number = i
    return trials


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_fallback_leads_counts_improvements_by_source(direction: str) -> None:
    from optuna.study import StudyDirection

    from optuna_meta.sampler._schedule import _fallback_leads

    d = StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE
    sign = 1.0 if direction == "maximize" else -1.0
    design = [_done(i, sign * i, "meta") for i in range(3)]  # the best so far: 2

    def leads(rest: list[tuple[float, str | None]], **kwargs: Any) -> bool:
        trials = _numbered(design + [_done(0, sign * v, s) for v, s in rest])
        return _fallback_leads(trials, start=3, direction=d, **kwargs)

    assert leads([(3, "fallback"), (0, "meta"), (4, "fallback")])
    assert not leads([(3, "fallback"), (0, "meta")])  # one improvement is not enough
    assert leads([(3, "fallback"), (0, "meta")], min_improvements=1)
    # The surrogate improves as often, from more trials' worth of evidence: no lead.
    assert not leads([(3, "fallback"), (4, "meta"), (5, "fallback"), (6, "meta")])
    # Trials of no known source (enqueued by the user) set the best but belong to nobody.
    assert not leads([(9, None), (3, "fallback"), (4, "fallback")])
    # Design trials (numbered below start) never count as the surrogate's or the fallback's.
    assert not _fallback_leads(
        _numbered([_done(0, sign * i, "fallback") for i in range(4)]), start=4, direction=d
    )


def test_fallback_leads_ignores_infinite_failed_and_infeasible_trials() -> None:
    from optuna.study import StudyDirection

    from optuna_meta.sampler._schedule import _fallback_leads

    up = StudyDirection.MAXIMIZE
    failed = optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={ATTR_SOURCE: "meta"})
    infeasible = _done(0, 100.0, "meta", system_attrs={"constraints": [1.0]})
    trials = [_done(0, 0.0, "meta"), _done(0, math.inf, "meta"), failed, infeasible]
    trials += [_done(0, 1.0, "fallback"), _done(0, 2.0, "fallback")]
    # Without the inf and infeasible trials as the best, the fallback's two trials improve.
    assert _fallback_leads(_numbered(trials), start=1, direction=up)
    feasible = _done(0, 100.0, "meta", system_attrs={"constraints": [-1.0]})
    trials[3] = feasible
    assert not _fallback_leads(_numbered(trials), start=1, direction=up)


def test_adaptive_fallback_is_checked_and_old_pickles_keep_the_fixed_schedule() -> None:
    with pytest.raises(TypeError, match="adaptive_fallback"):
        MetaSampler(adaptive_fallback="yes")  # type: ignore[arg-type]
    state = MetaSampler(seed=0, **FAST).__getstate__()
    del state["adaptive_fallback"]
    sampler = MetaSampler.__new__(MetaSampler)
    sampler.__setstate__(state)
    assert sampler.adaptive_fallback is False


def test_fallback_every_is_checked():
    with pytest.raises(TypeError, match="fallback_every"):
        MetaSampler(fallback_every="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fallback_every"):
        MetaSampler(fallback_every=-1)


def _xgb_booster(choices: Sequence[str]) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        booster = trial.suggest_categorical("booster", list(choices))
        rounds = trial.suggest_int("n_estimators", 7, 2981, log=True)
        lam = trial.suggest_float("reg_lambda", 9.1e-4, 1097.0, log=True)
        eta = trial.suggest_float("eta", 1e-4, 1.0, log=True)
        penalty = 1.0 if booster == "dart" else 0.0
        return math.log(rounds) + math.log(lam) ** 2 / 10 + math.log(eta) ** 2 + penalty

    return objective


def test_design_entries_for_a_choice_the_study_does_not_offer_are_skipped() -> None:
    # The study's boosters leave out gblinear: the design's gblinear entries are not run
    # with their booster swapped (a configuration no one chose), as the README says.
    model = SurrogateModel.load("rbv2-xgboost")
    linear = {
        (e["n_estimators"], round(e["reg_lambda"], 6), round(e["learning_rate"], 6))
        for e in model.initial_design
        if e["booster"] == "gblinear"
    }
    assert linear
    trials = _run(
        MetaSampler(model=model, seed=0, **FAST),
        _xgb_booster(["gbtree", "dart"]),
        n=len(model.initial_design),
    )
    tried = {
        (t.params["n_estimators"], round(t.params["reg_lambda"], 6), round(t.params["eta"], 6))
        for t in trials
    }
    assert not linear & tried


def test_an_enqueued_choice_takes_a_design_entry_made_for_it() -> None:
    # Trial 0 is enqueued on gblinear: it takes a gblinear entry, not entry 0 (dart) with its
    # booster swapped.
    model = SurrogateModel.load("rbv2-xgboost")
    linear = {
        (e["n_estimators"], round(e["reg_lambda"], 6))
        for e in model.initial_design
        if e["booster"] == "gblinear"
    }
    study = optuna.create_study(sampler=MetaSampler(model=model, seed=0, **FAST))
    study.enqueue_trial({"booster": "gblinear"})
    study.optimize(_xgb_booster(["gbtree", "gblinear", "dart"]), n_trials=1)
    (trial,) = study.trials
    assert trial.params["booster"] == "gblinear"
    assert (trial.params["n_estimators"], round(trial.params["reg_lambda"], 6)) in linear
