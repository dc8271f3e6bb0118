from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_meta.data import FORMAT_NAME, FORMAT_VERSION, MetaDataset, TaskData

C, P, F = TrialState.COMPLETE.value, TrialState.PRUNED.value, TrialState.FAIL.value
SPACE = {
    "model": CategoricalDistribution(["linear", "tree", None, 3]),
    "lr": FloatDistribution(1e-4, 1.0, log=True),  # only for "linear"
    "depth": IntDistribution(1, 12),  # only for "tree"
    "frac": FloatDistribution(0.0, 1.0, step=0.25),
}


def make_task(name: str = "t", n: int = 6, seed: int = 0, **kw: object) -> TaskData:
    rng = np.random.default_rng(seed)
    params = []
    for i in range(n):
        model = SPACE["model"].choices[i % 4]
        p: dict[str, object] = {"model": model, "frac": float(rng.integers(0, 5)) / 4}
        if model == "linear":
            p["lr"] = float(np.exp(rng.uniform(np.log(1e-4), 0.0)))
        elif model == "tree":
            p["depth"] = int(rng.integers(1, 13))
        params.append(p)
    states = np.array([[C, P, F][i % 3] for i in range(n)], dtype=np.int8)
    steps = np.array([1, 2, 5])
    curves = rng.uniform(0, 1, (n, 3))
    curves[states == P, 2] = np.nan  # pruned before the last step
    curves[states == F] = np.nan
    values = np.where(states == C, curves[:, 2], np.nan)
    args: dict[str, object] = dict(
        name=name,
        search_space=dict(SPACE),
        params=params,
        values=values,
        states=states,
        steps=steps,
        curves=curves,
        direction="maximize",
        meta_features={"n_samples": 150, "source": "iris", "ratio": 0.5},
    )
    args.update(kw)
    return TaskData(**args)  # type: ignore[arg-type]


# -- TaskData ----------------------------------------------------------------------------------
def test_coercion_and_helpers() -> None:
    task = make_task(n=6)
    assert task.values.dtype == np.float64 and task.states.dtype == np.int8
    assert task.steps.dtype == np.int64 and task.curves.shape == (6, 3)
    assert task.direction == StudyDirection.MAXIMIZE and task.sign == 1.0
    assert task.meta_features == {"n_samples": 150.0, "source": "iris", "ratio": 0.5}
    assert task.n_trials == 6
    np.testing.assert_array_equal(task.complete_mask, [1, 0, 0, 1, 0, 0])
    assert task.best_value == pytest.approx(np.nanmax(task.values))
    minimize = make_task(direction=StudyDirection.MINIMIZE)
    assert minimize.sign == -1.0 and minimize.best_value == pytest.approx(np.nanmin(task.values))


def test_states_may_be_enum_members() -> None:
    task = make_task(n=3, states=[TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
    np.testing.assert_array_equal(task.states, [C, P, F])


def test_final_values_uses_last_reported_value_of_pruned_trials() -> None:
    task = make_task(n=6)
    final = task.final_values()
    np.testing.assert_array_equal(final[task.complete_mask], task.values[task.complete_mask])
    pruned = np.flatnonzero(task.states == P)
    np.testing.assert_array_equal(final[pruned], task.curves[pruned, 1])
    assert np.isnan(final[task.states == F]).all()
    assert np.isnan(task.final_values(use_curves=False)[pruned]).all()


def test_to_arrays_internal_repr() -> None:
    task = make_task(n=4)
    x = task.to_arrays(["model", "lr", "depth"])
    np.testing.assert_array_equal(x[:, 0], [0, 1, 2, 3])  # index of the choice
    assert not np.isnan(x[0, 1]) and np.isnan(x[0, 2])  # linear: lr active, depth absent
    assert np.isnan(x[1, 1]) and x[1, 2] == task.params[1]["depth"]
    assert np.isnan(x[2, 1:]).all()
    assert task.to_arrays().shape == (4, 4)
    with pytest.raises(KeyError):
        task.to_arrays(["nope"])


def test_subset_and_trials() -> None:
    task = make_task(n=6)
    sub = task.subset([3, 0])
    assert sub.n_trials == 2 and sub.params == [task.params[3], task.params[0]]
    np.testing.assert_array_equal(sub.curves, task.curves[[3, 0]])
    by_mask = task.subset(task.complete_mask)
    assert by_mask == task.subset([0, 3])
    records = list(task.trials())
    assert len(records) == 6 and records[1].state == TrialState.PRUNED
    assert records[1].intermediate_values == {1: task.curves[1, 0], 2: task.curves[1, 1]}
    assert records[2].intermediate_values == {} and math.isnan(records[2].value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"values": np.zeros(5)}, "values has shape"),
        ({"states": np.ones(7, np.int8)}, "states has shape"),
        ({"states": np.zeros(6, np.int8)}, "states must be COMPLETE"),
        ({"curves": np.zeros((6, 2))}, "curves has shape"),
        ({"steps": np.array([1, 5, 2])}, "strictly increasing"),
        ({"steps": np.array([1.0, 2.5, 3.0])}, "integers"),
        ({"direction": "up"}, "direction"),
        ({"direction": StudyDirection.NOT_SET}, "NOT_SET"),
        ({"name": ""}, "non-empty"),
        ({"meta_features": {"x": [1, 2]}}, "meta-feature 'x'"),
        ({"search_space": {"model": SPACE["model"]}}, "not in search_space"),
        ({"search_space": {**SPACE, "lr": (0, 1)}}, "must be an Optuna distribution"),
    ],
)
def test_validation_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_task(n=6, **change)


def test_value_state_consistency() -> None:
    task = make_task(n=6)
    values = task.values.copy()
    values[0] = np.nan  # a COMPLETE trial without value
    with pytest.raises(ValueError, match="COMPLETE trials must have"):
        make_task(n=6, values=values)
    values = task.values.copy()
    values[1] = 0.3  # a PRUNED trial with a value
    with pytest.raises(ValueError, match="NaN for PRUNED and FAIL"):
        make_task(n=6, values=values)
    inf = task.values.copy()
    inf[0] = np.inf
    assert make_task(n=6, values=inf).best_value == np.inf


def test_empty_task_and_no_curves() -> None:
    task = make_task(n=0, params=[], values=[], states=[], steps=None, curves=None)
    assert task.n_trials == 0 and task.curves.shape == (0, 0) and math.isnan(task.best_value)


# -- MetaDataset -------------------------------------------------------------------------------
def make_dataset(n_tasks: int = 5) -> MetaDataset:
    return MetaDataset(make_task(f"task{i}", n=3 + i, seed=i) for i in range(n_tasks))


def test_collection_api() -> None:
    data = make_dataset(5)
    assert len(data) == 5 and data.task_names == [f"task{i}" for i in range(5)]
    assert data["task2"] is data[2] and "task2" in data and "x" not in data
    assert data.n_trials == sum(3 + i for i in range(5))
    assert data.select(["task3", "task1"]).task_names == ["task1", "task3"]
    assert data.drop(["task0", "absent"]).task_names == ["task1", "task2", "task3", "task4"]
    assert data[1:3].task_names == ["task1", "task2"]
    with pytest.raises(KeyError):
        data.select(["absent"])
    with pytest.raises(KeyError):
        data["absent"]
    with pytest.raises(ValueError, match="Duplicate task name"):
        MetaDataset([make_task("a"), make_task("a", seed=1)])
    both = data[:2].concat(data[2:4], data[4:])
    assert both == data
    with pytest.raises(ValueError, match="Duplicate"):
        data.concat(data[:1])


@pytest.mark.parametrize("k", [2, 3, 7])
def test_folds_partition_tasks(k: int) -> None:
    data = make_dataset(7)
    folds = data.folds(k, seed=3)
    assert len(folds) == k
    seen: list[str] = []
    for train, test in folds:
        assert set(train.task_names).isdisjoint(test.task_names)
        assert set(train.task_names) | set(test.task_names) == set(data.task_names)
        seen.extend(test.task_names)
    assert sorted(seen) == sorted(data.task_names)  # each task in exactly one test fold
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= 1
    again = [t.task_names for _, t in data.folds(k, seed=3)]
    assert again == [t.task_names for _, t in folds]


def test_folds_invalid_k() -> None:
    with pytest.raises(ValueError, match="k must be"):
        make_dataset(3).folds(4)
    with pytest.raises(ValueError, match="k must be"):
        make_dataset(3).folds(1)


# -- persistence -------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path) -> None:
    data = make_dataset(3)
    inf_values = make_task(n=6).values.copy()
    inf_values[0] = -np.inf
    odd = make_task(
        "odd/name with spaces", n=6, values=inf_values, direction="minimize", objective="loss"
    )
    no_curves = make_task("flat", n=3, steps=[], curves=np.empty((3, 0)), meta_features={})
    data = data.concat(MetaDataset([odd, no_curves]))
    path = tmp_path / "meta.bin"  # the exact path is used, whatever the suffix
    assert data.save(path) == path and path.exists()
    loaded = MetaDataset.load(path)
    assert loaded == data
    assert loaded["odd/name with spaces"].values[0] == -np.inf
    assert loaded[1].params[2]["model"] is None and loaded[1].params[3]["model"] == 3
    assert isinstance(loaded[0].params[1]["depth"], int)
    assert np.isnan(loaded[0].curves).sum() == np.isnan(data[0].curves).sum() > 0
    assert loaded["flat"].meta_features == {}
    data.save(tmp_path / "raw.npz", compress=False)
    assert MetaDataset.load(tmp_path / "raw.npz") == data


def test_equality_detects_differences() -> None:
    a, b = make_task(n=4), make_task(n=4)
    assert a == b
    b.params[1]["depth"] += 1
    assert a != b
    c = make_task(n=4)
    c.curves[0, 0] += 1e-9
    assert a != c
    assert make_task(n=4, meta_features={"x": 1.0}) != make_task(n=4, meta_features={"x": 2.0})


def test_save_rejects_value_outside_categorical_choices(tmp_path) -> None:
    task = make_task(n=4)
    task.params[0]["model"] = "svm"
    with pytest.raises(ValueError, match="not one of the choices"):
        MetaDataset([task]).save(tmp_path / "x.npz")


def _rewrite_manifest(path, tmp_path, **changes: object):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    manifest.update(changes)
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    out = tmp_path / "modified.npz"
    np.savez(out, **arrays)
    return out


def test_load_rejects_foreign_and_corrupt_files(tmp_path) -> None:
    good = make_dataset(2).save(tmp_path / "good.npz")
    with np.load(good) as z:
        assert json.loads(z["manifest"].tobytes())["format"] == FORMAT_NAME

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    with pytest.raises(ValueError, match="no 'manifest'"):
        MetaDataset.load(foreign)

    with pytest.raises(ValueError, match="version 999 is not supported"):
        MetaDataset.load(_rewrite_manifest(good, tmp_path, version=FORMAT_VERSION + 998))
    with pytest.raises(ValueError, match="format 'something-else'"):
        MetaDataset.load(_rewrite_manifest(good, tmp_path, format="something-else"))

    text = tmp_path / "text.npz"
    text.write_text("hello, I am not an archive")
    with pytest.raises(ValueError, match="not a MetaDataset file"):
        MetaDataset.load(text)

    pickled = tmp_path / "pickled.npz"
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["t0.values"] = np.array([{"evil": 1}], dtype=object)
    np.savez(pickled, **arrays)
    with pytest.raises(ValueError, match="without pickle"):
        MetaDataset.load(pickled)

    missing = tmp_path / "missing.npz"
    del arrays["t0.values"]
    np.savez(missing, **arrays)
    with pytest.raises(ValueError, match=r"missing array 't0\.values'"):
        MetaDataset.load(missing)

    with pytest.raises(FileNotFoundError):
        MetaDataset.load(tmp_path / "absent.npz")


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(0, 8),
    t=st.integers(0, 4),
    seed=st.integers(0, 2**16),
    direction=st.sampled_from(["minimize", "maximize"]),
)
def test_round_trip_property(tmp_path_factory, n: int, t: int, seed: int, direction: str) -> None:
    rng = np.random.default_rng(seed)
    states = rng.choice([C, P, F], n).astype(np.int8)
    curves = np.where(rng.uniform(size=(n, t)) < 0.3, np.nan, rng.normal(size=(n, t)))
    space = {"a": FloatDistribution(-5, 5), "b": IntDistribution(1, 64, log=True)}
    params = [
        {"a": float(rng.uniform(-5, 5))}
        if rng.uniform() < 0.5
        else {"b": int(rng.integers(1, 65))}
        for _ in range(n)
    ]
    task = TaskData(
        name="p",
        search_space=space,
        params=params,
        values=np.where(states == C, rng.normal(size=n), np.nan),
        states=states,
        steps=np.sort(rng.choice(100, t, replace=False)),
        curves=curves,
        direction=direction,
        meta_features={"x": float(rng.normal())},
    )
    path = tmp_path_factory.mktemp("prop") / "p.npz"
    MetaDataset([task]).save(path)
    assert MetaDataset.load(path) == MetaDataset([task])
