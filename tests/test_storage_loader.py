from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_meta.data import (
    META_FEATURES_KEY,
    MetaDataset,
    TaskData,
    export_to_storage,
    load_from_storage,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _populate(storage: str | optuna.storages.BaseStorage) -> None:
    """Real studies: pruning, minimize, failures, multi-objective, meta-features, conditional."""

    def sampler(seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)

    def pruned_objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(4):
            trial.report(x * (step + 1), step)
            if step == 1 and x < 0.5:
                raise optuna.TrialPruned()
        if trial.number == 0:
            trial.report(float("nan"), 10)  # a NaN intermediate value
        return x * 4

    s = optuna.create_study(
        study_name="pruned", storage=storage, direction="maximize", sampler=sampler(0)
    )
    s.enqueue_trial({"x": 0.9})  # completes, and reports NaN at step 10
    s.optimize(pruned_objective, n_trials=8)

    def minimize(trial: optuna.Trial) -> float:
        n = trial.suggest_int("n", 1, 100, log=True)
        return math.inf if trial.number == 5 else float((n - 10) ** 2)

    s = optuna.create_study(study_name="minimize", storage=storage, sampler=sampler(1))
    s.enqueue_trial({"n": 1}, skip_if_exists=False)
    s.optimize(minimize, n_trials=6)

    def failing(trial: optuna.Trial) -> float:
        y = trial.suggest_float("y", -1.0, 1.0)
        if trial.number % 2 == 1:
            raise RuntimeError("boom")
        return y

    s = optuna.create_study(study_name="failing", storage=storage, sampler=sampler(2))
    s.optimize(failing, n_trials=6, catch=(RuntimeError,))

    s = optuna.create_study(
        study_name="multi", storage=storage, directions=["minimize", "maximize"]
    )
    s.optimize(lambda t: (t.suggest_float("z", 0, 1), 1.0), n_trials=2)

    s = optuna.create_study(study_name="attrs", storage=storage, sampler=sampler(3))
    s.set_user_attr("n_samples", 1000)
    s.set_user_attr("dataset", "iris")
    s.set_user_attr("balanced", True)
    s.set_user_attr("tags", ["a", "b"])  # not a meta-feature
    s.set_metric_names(["loss"])
    s.optimize(lambda t: t.suggest_float("w", 0, 1), n_trials=3)

    s = optuna.create_study(study_name="explicit", storage=storage, sampler=sampler(4))
    s.set_user_attr(META_FEATURES_KEY, {"n_features": 4, "kind": "tabular", "bad": [1]})
    s.set_user_attr("ignored", 1.0)
    s.optimize(lambda t: t.suggest_float("w", 0, 1), n_trials=2)

    def conditional(trial: optuna.Trial) -> float:
        model = trial.suggest_categorical("model", ["svm", "tree"])
        if model == "svm":
            return trial.suggest_float("c", 1e-3, 1e3, log=True)
        return float(trial.suggest_int("depth", 1, 8))

    s = optuna.create_study(study_name="conditional", storage=storage, sampler=sampler(5))
    s.optimize(conditional, n_trials=10)

    # The ranges change between trials (allowed by Optuna): the loader widens them.
    s = optuna.create_study(study_name="changing", storage=storage, sampler=sampler(6))
    s.optimize(lambda t: t.suggest_float("a", 0, 1) + t.suggest_int("k", 0, 3), n_trials=2)
    s.optimize(lambda t: t.suggest_float("a", -2, 0.5) + t.suggest_int("k", 2, 6), n_trials=2)

    optuna.create_study(study_name="empty", storage=storage)


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("storage") / "past.db"
    storage = RDBStorage(f"sqlite:///{path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _populate(storage)
    storage.engine.dispose()
    return path


@pytest.fixture(scope="module")
def loaded(sqlite_file: Path) -> MetaDataset:
    with pytest.warns(UserWarning) as record:
        data = load_from_storage(f"sqlite:///{sqlite_file}")
    messages = " | ".join(str(w.message) for w in record)
    assert "multi-objective study 'multi'" in messages
    assert "study 'empty'" in messages
    return data


def test_all_single_objective_studies_become_tasks(loaded: MetaDataset) -> None:
    assert loaded.task_names == [
        "pruned",
        "minimize",
        "failing",
        "attrs",
        "explicit",
        "conditional",
        "changing",
    ]


def test_pruned_study(loaded: MetaDataset, sqlite_file: Path) -> None:
    task = loaded["pruned"]
    study = optuna.load_study(study_name="pruned", storage=f"sqlite:///{sqlite_file}")
    trials = study.get_trials(deepcopy=False)
    assert task.direction == StudyDirection.MAXIMIZE and task.sign == 1.0
    assert task.n_trials == 8
    assert [TrialState(s) for s in task.states] == [t.state for t in trials]
    n_pruned = sum(t.state == TrialState.PRUNED for t in trials)
    assert 0 < n_pruned < 8
    assert math.isnan(trials[0].intermediate_values[10])
    np.testing.assert_array_equal(task.steps, [0, 1, 2, 3])  # the NaN report reads as no report
    for i, t in enumerate(trials):
        assert task.params[i] == t.params
        for s, v in t.intermediate_values.items():
            if s != 10:
                assert task.curves[i, task.steps.tolist().index(s)] == v
        if t.state == TrialState.PRUNED:
            assert math.isnan(task.values[i])
            assert np.isnan(task.curves[i, 2:]).all()
            assert task.final_values()[i] == pytest.approx(t.value)  # Optuna: last reported
        else:
            assert task.values[i] == pytest.approx(t.value)
    assert task.search_space == {"x": FloatDistribution(0.0, 1.0)}
    assert task.best_value == pytest.approx(study.best_value)


def test_include_pruned_false(sqlite_file: Path) -> None:
    data = load_from_storage(sqlite_file, ["pruned"], include_pruned=False)
    task = data["pruned"]
    assert (task.states == TrialState.COMPLETE.value).all() and 0 < task.n_trials < 8


def test_minimize_and_inf(loaded: MetaDataset) -> None:
    task = loaded["minimize"]
    assert task.direction == StudyDirection.MINIMIZE and task.sign == -1.0
    assert task.n_trials == 6 and task.values[-1] == math.inf
    assert task.params[0] == {"n": 1} and isinstance(task.params[1]["n"], int)
    assert task.search_space == {"n": IntDistribution(1, 100, log=True)}
    assert task.steps.shape == (0,) and task.curves.shape == (6, 0)
    assert task.best_value == np.min(task.values)


def test_failed_trials_are_skipped(loaded: MetaDataset) -> None:
    task = loaded["failing"]
    assert task.n_trials == 3 and (task.states == TrialState.COMPLETE.value).all()


def test_meta_features_and_objective_name(loaded: MetaDataset) -> None:
    assert loaded["attrs"].meta_features == {
        "n_samples": 1000.0,
        "dataset": "iris",
        "balanced": 1.0,
    }
    assert loaded["attrs"].objective == "loss"
    assert loaded["explicit"].meta_features == {"n_features": 4.0, "kind": "tabular"}
    assert loaded["explicit"].objective == "value"
    assert loaded["pruned"].meta_features == {}


def test_conditional_space(loaded: MetaDataset) -> None:
    task = loaded["conditional"]
    assert task.search_space == {
        "model": CategoricalDistribution(["svm", "tree"]),
        "c": FloatDistribution(1e-3, 1e3, log=True),
        "depth": IntDistribution(1, 8),
    }
    kinds = {p["model"] for p in task.params}
    assert kinds == {"svm", "tree"}
    for p in task.params:
        assert set(p) == ({"model", "c"} if p["model"] == "svm" else {"model", "depth"})


def test_changing_space(loaded: MetaDataset) -> None:
    task = loaded["changing"]
    assert task.search_space == {"a": FloatDistribution(-2.0, 1.0), "k": IntDistribution(0, 6)}
    assert task.n_trials == 4


def test_conflicting_distributions_any_base_storage() -> None:
    storage = optuna.storages.InMemoryStorage()  # unlike RDB, it accepts conflicting kinds
    study = optuna.create_study(study_name="conflict", storage=storage)
    Int, Float, Cat = IntDistribution, FloatDistribution, CategoricalDistribution
    rows = [
        ({"k": 3, "c": "red"}, {"k": Int(0, 3), "c": Cat(["red", "blue"])}),
        ({"k": 1}, {"k": Int(0, 3)}),
        ({"k": 0.5, "c": "green"}, {"k": Float(0, 1), "c": Cat(["green"])}),
    ]
    study.add_trials(
        optuna.trial.create_trial(params=p, distributions=d, value=float(i))
        for i, (p, d) in enumerate(rows)
    )
    with pytest.warns(UserWarning, match="'k' has incompatible distributions.*from 1 trial"):
        task = load_from_storage(storage)["conflict"]
    assert task.search_space == {"k": Float(0, 1), "c": Cat(["red", "blue", "green"])}
    assert task.params == [{"c": "red"}, {"k": 1.0}, {"k": 0.5, "c": "green"}]
    assert isinstance(task.params[1]["k"], float)  # converted to the kept distribution


def test_storage_argument_forms(sqlite_file: Path, loaded: MetaDataset) -> None:
    names = ["conditional", "pruned"]
    expected = loaded.select(names)
    by_path = load_from_storage(str(sqlite_file), names)
    assert by_path.task_names == names  # the requested order
    assert MetaDataset([by_path["pruned"], by_path["conditional"]]) == expected
    storage = RDBStorage(f"sqlite:///{sqlite_file}")
    by_object = load_from_storage(storage, ["pruned", "conditional"])
    storage.engine.dispose()
    assert by_object == expected
    with pytest.raises(ValueError, match="not in the storage"):
        load_from_storage(sqlite_file, ["nope"])
    with pytest.raises(FileNotFoundError):
        load_from_storage(sqlite_file.with_name("absent.db"))
    with pytest.raises(ValueError, match="Cannot tell the storage type"):
        load_from_storage(sqlite_file.with_suffix(".csv"))


def test_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "past.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="j", storage=storage, direction="maximize")
    study.set_user_attr("rows", 42)

    def objective(trial: optuna.Trial) -> float:
        v = trial.suggest_float("v", 0, 1)
        trial.report(v / 2, 1)
        if trial.number == 1:
            raise optuna.TrialPruned()
        return v

    study.optimize(objective, n_trials=3)
    from_object = load_from_storage(storage)
    from_path = load_from_storage(str(path))
    assert from_object == from_path
    task = from_path["j"]
    assert task.n_trials == 3 and task.meta_features == {"rows": 42.0}
    assert task.states.tolist() == [1, 2, 1] and task.steps.tolist() == [1]
    np.testing.assert_allclose(task.curves[:, 0], [t.intermediate_values[1] for t in study.trials])


def test_export_load_round_trip(loaded: MetaDataset, tmp_path: Path) -> None:
    path = tmp_path / "export.db"
    names = export_to_storage(loaded, path, prefix="meta-")
    assert names == [f"meta-{n}" for n in loaded.task_names]
    back = load_from_storage(path)
    assert back.task_names == names
    for original, task in zip(loaded, back, strict=True):
        assert task == dataclasses.replace(original, name="meta-" + original.name)
    study = optuna.load_study(study_name="meta-pruned", storage=f"sqlite:///{path}")
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.value == t.intermediate_values[t.last_step] for t in pruned)


def test_export_synthetic_with_fail_and_overwrite(tmp_path: Path) -> None:
    task = TaskData(
        name="synthetic",
        search_space={"b": CategoricalDistribution(["x", "y"]), "q": IntDistribution(0, 9)},
        params=[{"b": "x", "q": 3}, {"b": "y"}, {"b": "x", "q": 0}],
        values=np.array([0.5, np.nan, np.nan]),
        states=np.array([1, 2, 3], dtype=np.int8),
        steps=np.array([1, 3]),
        curves=np.array([[0.1, 0.5], [0.2, np.nan], [np.nan, np.nan]]),
        direction="minimize",
        meta_features={"n": 3.0, "name": "s"},
        objective="rmse",
    )
    data = MetaDataset([task])
    url = f"sqlite:///{tmp_path / 'synth.db'}"
    export_to_storage(data, url)
    with pytest.raises(DuplicatedStudyError, match="overwrite=True"):
        export_to_storage(data, url)
    task.values[0] = 0.25
    export_to_storage(data, url, overwrite=True)
    study = optuna.load_study(study_name="synthetic", storage=url)
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    ]
    assert study.trials[0].value == 0.25 and study.metric_names == ["rmse"]
    # FAIL trials are not read back; the rest round-trips.
    assert load_from_storage(url)["synthetic"] == task.subset([0, 1])

    journal = tmp_path / "synth.journal"
    export_to_storage(data, journal)
    assert load_from_storage(journal)["synthetic"] == task.subset([0, 1])


def test_postgresql_storage_reads_like_sqlite(
    postgres_server: object, loaded: MetaDataset, tmp_path: Path
) -> None:
    """The same studies written to PostgreSQL load to the same dataset, by URL and by object;
    an export to PostgreSQL round-trips."""
    url = postgres_server.new_database()  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _populate(url)
    with pytest.warns(UserWarning) as record:
        from_url = load_from_storage(url)
    assert "multi-objective study 'multi'" in " | ".join(str(w.message) for w in record)
    assert from_url == loaded
    storage = RDBStorage(url)
    by_object = load_from_storage(storage, ["pruned", "conditional"])
    assert by_object == loaded.select(["pruned", "conditional"])
    storage.engine.dispose()
    target = postgres_server.new_database()  # type: ignore[attr-defined]
    names = export_to_storage(loaded, target, prefix="meta-")
    back = load_from_storage(target)
    assert back.task_names == names
    for original, task in zip(loaded, back, strict=True):
        assert task == dataclasses.replace(original, name="meta-" + original.name)


def test_model_space_settles_disagreeing_studies_by_majority_and_says_so() -> None:
    """A colleague's linear learning rate or categorical layer count must not silently turn
    the whole model's space linear or categorical (the last study used to win)."""
    from optuna_meta.surrogate import model_space

    storage = optuna.storages.InMemoryStorage()

    def usual(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        return lr + trial.suggest_int("n_layers", 1, 6)

    def odd(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 0.1)
        return lr + int(trial.suggest_categorical("n_layers", ["1", "2", "3", "4"]))

    for name, objective in [("a", usual), ("b", usual), ("odd", odd)]:
        study = optuna.create_study(study_name=name, storage=storage)
        study.optimize(objective, n_trials=3)
    with pytest.warns(UserWarning) as record:
        space = model_space(load_from_storage(storage))
    assert space["lr"] == FloatDistribution(1e-5, 1.0, log=True)
    assert space["n_layers"] == IntDistribution(1, 6)
    messages = [str(w.message) for w in record]
    assert any("'lr'" in m and "linear one in ['odd']" in m for m in messages), messages
    assert any("'n_layers' is numerical in 2 of 3 tasks, not in ['odd']" in m for m in messages)
    # Studies that agree give no warning.
    optuna.delete_study(study_name="odd", storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model_space(load_from_storage(storage))["n_layers"] == IntDistribution(1, 6)


def test_values_of_another_kind_are_dropped_not_snapped() -> None:
    """A minority task's value that is not a choice (or is out of range) must not be
    relabelled as a nearby one: that would train on trials that were never run."""
    from optuna_meta.surrogate._build import _fit_params

    categorical = {"n_layers": CategoricalDistribution([1, 2, 8])}
    assert _fit_params({"n_layers": 3}, categorical) == {}
    assert _fit_params({"n_layers": 2}, categorical) == {"n_layers": 2}
    assert _fit_params({"n_layers": "2"}, categorical) == {}
    numeric = {"n_layers": IntDistribution(1, 4)}
    assert _fit_params({"n_layers": 8}, numeric) == {}
    assert _fit_params({"n_layers": "relu"}, numeric) == {}
    assert _fit_params({"n_layers": 3}, numeric) == {"n_layers": 3}
    names = {"act": CategoricalDistribution(["relu", "tanh"])}
    assert _fit_params({"act": "tanh"}, names) == {"act": "tanh"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///past.db", "past.db"),
        ("sqlite+pysqlite:///past.db", "past.db"),
        ("sqlite:///file:past.db?mode=ro&uri=true", "past.db"),
        ("sqlite:///file://localhost/tmp/abs.db?uri=true", "/tmp/abs.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_sqlite_file_of_a_url(url: str, expected: str | None) -> None:
    from optuna_meta.data._storage import sqlite_file

    found = sqlite_file(url)
    assert (None if found is None else str(found)) == expected


def test_reading_checks_that_a_sqlite_file_exists_in_every_spelling(tmp_path: Path) -> None:
    db = tmp_path / "past.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{db}").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert load_from_storage(read_only).task_names == ["s"]
    for typo in (f"sqlite:///{tmp_path}/typo.db", f"sqlite+pysqlite:///{tmp_path}/typo.db"):
        with pytest.raises(FileNotFoundError, match="No SQLite database"):
            load_from_storage(typo)
    assert not (tmp_path / "typo.db").exists()


def test_a_sqlite_file_that_is_no_optuna_storage_is_refused_and_left_unchanged(
    tmp_path: Path,
) -> None:
    # RDBStorage creates its tables in any database it opens: another program's database
    # (a typo in the path) got 13 Optuna tables written into it.
    import sqlite3

    path = tmp_path / "app.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE users (x INTEGER)")
    con.close()
    for storage in (path, str(path), f"sqlite:///{path}"):
        with pytest.raises(ValueError, match="not an Optuna storage"):
            load_from_storage(storage)
    with sqlite3.connect(path) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    con.close()
    assert tables == ["users"]


def test_a_storage_of_an_older_optuna_schema_is_a_clear_error(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'old.db'}"
    optuna.create_study(study_name="s", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    with sqlite3.connect(tmp_path / "old.db") as con:
        con.execute("UPDATE alembic_version SET version_num = 'v3.0.0.a'")
    con.close()
    with pytest.raises(ValueError, match="optuna storage upgrade"):
        load_from_storage(url)


def test_study_names_must_be_a_non_empty_list_of_names(sqlite_file: Path) -> None:
    # A single name as a str was read letter by letter ("Studies ['p', 'r', ...]").
    with pytest.raises(TypeError, match=r"pass \['pruned'\]"):
        load_from_storage(sqlite_file, "pruned")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="study_names is empty"):
        load_from_storage(sqlite_file, [])
    assert load_from_storage(sqlite_file, ["pruned"]).task_names == ["pruned"]


def test_renaming_a_parameter_no_task_has_warns(loaded: MetaDataset) -> None:
    with pytest.warns(UserWarning, match=r"No task has the parameters \['nope'\]"):
        renamed = loaded.rename_params({"nope": "x"})
    assert [t.search_space for t in renamed] == [t.search_space for t in loaded]


def test_training_arrays_keep_pruned_and_diverged_trials() -> None:
    """``optuna-meta train`` learns from pruned trials (their last report) and from diverged
    ones (an infinite value as the task's worst finite one): without them a model trained on
    studies run with a pruner, or on studies where large learning rates diverge, steered new
    studies into the regions it never saw (a reviewer's families: regret 0.77 and 1.88 at the
    first trial, against 0.28 and 0.31 with them). Failed trials have no value: left out."""
    from optuna_meta.data import MetaDataset, TaskData
    from optuna_meta.space import SpaceEncoder
    from optuna_meta.surrogate._build import task_arrays

    space = {"lr": FloatDistribution(1e-4, 1.0, log=True)}
    lrs = [1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3, 0.5, 0.8, 0.9, 1.0]
    C, P, F = TrialState.COMPLETE.value, TrialState.PRUNED.value, TrialState.FAIL.value
    task = TaskData(
        name="t",
        search_space=space,
        params=[{"lr": x} for x in lrs],
        values=np.array([0.3, 0.2, 0.1, 0.15, np.nan, np.inf, np.inf, np.nan, np.nan, 0.12]),
        states=np.array([C, C, C, C, P, C, C, P, F, C], dtype=np.int8),
        steps=np.array([1, 2]),
        curves=np.array(
            [[np.nan, np.nan]] * 4 + [[0.9, 0.4]] + [[np.nan, np.nan]] * 2 + [[np.nan, np.nan]] * 3
        ),
        direction="minimize",
    )
    encoder = SpaceEncoder(space)
    ((name, X, y),) = task_arrays(MetaDataset([task]), encoder, min_trials=8)
    assert name == "t" and len(X) == len(y) == 8  # the failed trial and the silent pruned one out
    # maximisation-oriented: -value; the pruned trial's last report 0.4; inf -> worst finite (0.4)
    np.testing.assert_allclose(y, [-0.3, -0.2, -0.1, -0.15, -0.4, -0.4, -0.4, -0.12])
    assert np.all(np.isfinite(X))


def test_the_trained_space_keeps_a_step_the_studies_share() -> None:
    """Past studies that all searched ``hidden_size`` in steps of 32 (and a float in steps of
    0.25): the model's space keeps the step, so its defaults are values a study can run (it
    dropped the step: a default of 253). Grids that do not align give up the step."""
    from optuna_meta.data import MetaDataset, TaskData
    from optuna_meta.surrogate._build import model_space

    def task(name: str, low: int, frac_low: float) -> TaskData:
        space = {
            "hidden_size": IntDistribution(low, low + 224, step=32),
            "frac": FloatDistribution(frac_low, frac_low + 0.5, step=0.25),
        }
        return TaskData(
            name=name,
            search_space=space,
            params=[{"hidden_size": low, "frac": frac_low}],
            values=np.array([1.0]),
            states=np.array([TrialState.COMPLETE.value], dtype=np.int8),
            steps=np.zeros(0),
            curves=np.zeros((1, 0)),
            direction="minimize",
        )

    space = model_space(MetaDataset([task("a", 32, 0.0), task("b", 64, 0.25)]))
    assert space["hidden_size"] == IntDistribution(32, 288, step=32)
    assert space["frac"] == FloatDistribution(0.0, 0.75, step=0.25)
    misaligned = model_space(MetaDataset([task("a", 32, 0.0), task("c", 48, 0.1)]))
    assert misaligned["hidden_size"].step == 1 and misaligned["frac"].step is None


def test_an_older_schema_lacking_tables_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    # RDBStorage creates the tables a newer schema added before its version check refuses
    # the file: an Optuna 2.3 file got three tables written into it although it was only read.
    import hashlib
    import sqlite3

    path = tmp_path / "old.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{path}").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    with sqlite3.connect(path) as con:
        con.execute("DROP TABLE trial_heartbeats")
        con.execute("UPDATE alembic_version SET version_num = 'v2.4.0.a'")
    con.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for storage in (path, f"sqlite:///{path}"):
        with pytest.raises(ValueError, match="optuna storage upgrade"):
            load_from_storage(storage)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_export_refuses_files_that_are_no_optuna_storage_and_leaves_them_unchanged(
    loaded: MetaDataset, tmp_path: Path
) -> None:
    # A `.log` is taken for a journal by its name: exporting into a training log appended
    # journal records to it, then failed inside Optuna; another program's SQLite database
    # got Optuna's tables.
    import sqlite3

    log = tmp_path / "train.log"
    log.write_text("epoch 1/10: 100%|##########| loss=0.31")
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as con:
        con.execute("CREATE TABLE users (x INTEGER)")
    con.close()
    app_bytes = app.read_bytes()
    with pytest.raises(ValueError, match="not an Optuna journal file"):
        export_to_storage(loaded, log)
    with pytest.raises(ValueError, match="not an Optuna journal file"):
        load_from_storage(log)
    assert log.read_text() == "epoch 1/10: 100%|##########| loss=0.31"
    for storage in (app, f"sqlite:///{app}"):
        with pytest.raises(ValueError, match="not an Optuna storage"):
            export_to_storage(loaded, storage)
    assert app.read_bytes() == app_bytes
    # an empty file, or a journal, is still written to
    empty = tmp_path / "new.log"
    empty.touch()
    export_to_storage(loaded, empty)
    export_to_storage(loaded, empty, prefix="again/")
    assert len(load_from_storage(empty)) == 2 * len(loaded)


def _constrained_study(storage: optuna.storages.BaseStorage, name: str, seed: int) -> None:
    def objective(trial: optuna.Trial) -> float:
        units = trial.suggest_int("n_units", 16, 1024)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.set_constraint("size", units - 128)  # feasible up to 128 units
        return units / 1024 + 0.1 * (math.log10(lr) + 2) ** 2  # larger is better

    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )  # fmt: skip
    study.optimize(objective, n_trials=30)


def test_constraints_are_read_kept_and_written_back(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    _constrained_study(storage, "c", seed=0)
    optuna.create_study(study_name="plain", storage=storage).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=3
    )
    data = load_from_storage(storage)
    trials = optuna.load_study(study_name="c", storage=storage).trials
    assert data["c"].feasible.tolist() == [t.params["n_units"] <= 128 for t in trials]
    assert data["plain"].feasible is None
    assert 0 < data["c"].feasible.sum() < 30
    path = data.save(tmp_path / "d.npz")
    assert MetaDataset.load(path) == data
    assert MetaDataset.load(path)["c"].feasible.tolist() == data["c"].feasible.tolist()
    journal = tmp_path / "back.log"
    export_to_storage(data, journal)
    back = load_from_storage(journal)
    assert back == data
    assert data["c"].subset([0, 1]).feasible.tolist() == data["c"].feasible[:2].tolist()


def test_training_ranks_infeasible_trials_below_feasible_ones(tmp_path: Path) -> None:
    """The past studies' best values were infeasible (many units where 128 were allowed):
    the design made of their best trials was infeasible throughout."""
    from optuna_meta.surrogate import build_model
    from optuna_meta.surrogate._train import TrainConfig

    storage = optuna.storages.InMemoryStorage()
    for k in range(3):
        _constrained_study(storage, f"c{k}", seed=k)
    data = load_from_storage(storage)
    assert not data["c2"].feasible.any()  # this one ran none within its constraint
    with pytest.warns(UserWarning, match="'c2' is left out: none of its trials met"):
        model = build_model(data, config=TrainConfig(steps=20), observed_design=3)
    assert model.manifest["training_tasks"] == ["c0", "c1"]
    assert model.initial_design
    assert all(e["hidden_size"] <= 128 for e in model.initial_design)


def test_step_grids_that_disagree_are_merged_so_every_value_fits(tmp_path: Path) -> None:
    # Optuna accepts a study whose `suggest_int("units", 32, 512, step=32)` later became
    # `(16, 512, step=32)`: the merged IntDistribution(16, 496, step=32) held neither 32, 256
    # nor 512, which training moved or dropped, and export failed half-way.
    from optuna.trial import create_trial

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="grid", storage=storage)
    grids = [
        (32, IntDistribution(32, 512, step=32)),
        (512, IntDistribution(32, 512, step=32)),
        (48, IntDistribution(16, 512, step=32)),
        (64, IntDistribution(64, 512)),
    ]
    for units, dist in grids:
        trial = create_trial(params={"units": units}, distributions={"units": dist}, value=1.0)
        study.add_trial(trial)
    f = optuna.create_study(study_name="f", storage=storage)
    for x, dist in (
        (0.1, FloatDistribution(0, 1, step=0.1)),
        (1.05, FloatDistribution(0.05, 1.05, step=0.1)),
    ):
        f.add_trial(create_trial(params={"x": x}, distributions={"x": dist}, value=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no parameter dropped from any trial
        data = load_from_storage(storage)
    assert [p["units"] for p in data["grid"].params] == [32, 512, 48, 64]
    assert data["grid"].search_space["units"] == IntDistribution(16, 512)
    assert data["f"].search_space["x"] == FloatDistribution(0.0, 1.05)
    assert (
        load_from_storage(export_to_storage(data, tmp_path / "g.log") and tmp_path / "g.log")
        == data
    )


def test_export_checks_every_trial_before_it_replaces_a_study(tmp_path: Path) -> None:
    # A value outside its distribution failed the export half-way, after `overwrite` had
    # deleted the study it was to replace.
    url = f"sqlite:///{tmp_path / 'target.db'}"
    optuna.create_study(study_name="t", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=3
    )
    bad = TaskData(
        name="t",
        search_space={"x": FloatDistribution(0, 1)},
        params=[{"x": 0.5}, {"x": 2.0}],  # 2.0 is outside
        values=np.array([1.0, 2.0]),
        states=np.array([TrialState.COMPLETE] * 2),
        steps=None,
        curves=None,
        direction="minimize",
    )
    with pytest.raises(ValueError):
        export_to_storage(MetaDataset([bad]), url, overwrite=True)
    assert len(optuna.load_study(study_name="t", storage=url).trials) == 3


def test_training_says_which_values_do_not_fit_the_model_space() -> None:
    """[True, False] in one study and [0, 1] in another: equal in Python, so the merged
    choices are True/False and the second study's values are left out, which happened
    without a word."""
    from optuna_meta.surrogate import build_model
    from optuna_meta.surrogate._train import TrainConfig

    rng = np.random.default_rng(0)

    def task(name: str, choices: list[Any]) -> TaskData:
        params = [{"use_bn": choices[i % 2], "x": float(rng.random())} for i in range(10)]
        space = {"use_bn": CategoricalDistribution(choices), "x": FloatDistribution(0, 1)}
        return TaskData(
            name=name, search_space=space, params=params, values=rng.random(10),
            states=[TrialState.COMPLETE] * 10, steps=None, curves=None, direction="minimize",
        )  # fmt: skip

    data = MetaDataset([task("bools", [True, False]), task("ints", [0, 1])])
    with pytest.warns(UserWarning, match=r"Task 'ints': 10 value\(s\) of \['use_bn'\]"):
        build_model(data, config=TrainConfig(steps=3), observed_design=0)


def test_a_design_entry_from_a_study_that_did_not_tune_a_parameter_runs_what_was_scored() -> None:
    # The observed design scores each run configuration with an untuned parameter at the unit
    # midpoint (as training encodes it); the entry ran with the model's default instead, a
    # configuration neither a past study ran nor the portfolio chose (dropout 0.25 scored,
    # 0.07 served).
    from optuna_meta.space import SpaceEncoder
    from optuna_meta.surrogate import build_model
    from optuna_meta.surrogate._build import _task_rows, canonicalize
    from optuna_meta.surrogate._train import TrainConfig

    storage = optuna.storages.InMemoryStorage()

    def past(tuned: bool, seed: int) -> None:
        def objective(trial: optuna.Trial) -> float:
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            units = trial.suggest_int("n_units", 16, 256)
            drop = trial.suggest_float("dropout", 0.0, 0.5) if tuned else 0.1
            if tuned:  # an even grid: its midpoint is no grid point
                drop += trial.suggest_int("n_layers", 1, 4) / 100
                drop += trial.suggest_float("wd", 0.0, 0.5, step=0.1) / 100
            opt = trial.suggest_categorical("opt", ["sgd", "adam"]) if tuned else "sgd"
            if tuned and opt == "sgd":  # conditional: inactive on the adam branch
                drop += trial.suggest_float("momentum", 0.0, 0.99) / 10
            return (math.log10(lr) + 3) ** 2 + (drop - 0.2) ** 2 + (opt == "adam") + units / 1e3

        study = optuna.create_study(
            study_name=f"s{seed}", storage=storage, sampler=optuna.samplers.RandomSampler(seed)
        )
        study.optimize(objective, n_trials=20)

    for seed in range(6):
        past(seed < 3, seed)  # studies 3-5 tune neither dropout nor the optimizer
    data = canonicalize(load_from_storage(storage))
    model = build_model(data, config=TrainConfig(steps=5), observed_design=5)
    encoder = SpaceEncoder(model.search_space)
    rows = {name: (X, configs) for name, X, _, configs in _task_rows(data, encoder)}
    numeric = [
        i
        for n in ("learning_rate", "hidden_size", "dropout", "num_layers", "weight_decay")
        for i in range(*encoder.feature_slices[n].indices(encoder.n_features))
    ]
    for name in ("s3", "s4", "s5"):
        X, configs = rows[name]
        assert all(c["dropout"] == 0.25 and "opt" not in c for c in configs)
        assert {c["num_layers"] for c in configs} <= {2, 3}  # on the grid
        # Each configuration is the row that was scored, categoricals aside.
        again = encoder.encode([{**c, "opt": "sgd"} for c in configs])
        np.testing.assert_allclose(again[:, numeric], X[:, numeric])
    for name in ("s0", "s1", "s2"):  # tuned: as they ran, inactive parameters left out
        for config in rows[name][1]:
            assert ("momentum" in config) == (config["opt"] == "sgd")
    numeric_names = {"learning_rate", "hidden_size", "dropout", "num_layers", "weight_decay"}
    assert all(numeric_names <= e.keys() for e in model.initial_design)
