from __future__ import annotations

import numpy as np
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_meta.data import (
    TEST_INSTANCES,
    MetaDataset,
    YahpoSurrogate,
    default_yahpo_dir,
    load_yahpo,
)

_DIR = default_yahpo_dir()


def _needs(scenario: str) -> pytest.MarkDecorator:
    present = _DIR is not None and (_DIR / scenario / "model.onnx").is_file()
    return pytest.mark.skipif(
        not present,
        reason=f"YAHPO data for {scenario!r} not found (set $OPTUNA_META_YAHPO_DATA or provide "
        "../shared/data/yahpo).",
    )


LC_TASKS = ["3945", "7593"]
XGB_TASKS = ["40923", "1067"]


@_needs("lcbench")
def test_lcbench_tasks_values_and_curves() -> None:
    data = load_yahpo("lcbench", 20, tasks=LC_TASKS, seed=1)
    assert data.task_names == ["lcbench/3945", "lcbench/7593"]
    bench = YahpoSurrogate("lcbench")
    for task_id, task in zip(LC_TASKS, data, strict=True):
        assert task.n_trials == 20 and task.objective == "val_accuracy"
        assert task.direction == StudyDirection.MAXIMIZE
        assert task.meta_features == {"scenario": "lcbench", "openml_task_id": task_id}
        assert (task.states == TrialState.COMPLETE.value).all()
        np.testing.assert_array_equal(task.steps, np.arange(1, 53))
        assert task.curves.shape == (20, 52) and not np.isnan(task.curves).any()
        assert ((task.values >= 0) & (task.values <= 100)).all()
        np.testing.assert_array_equal(task.curves[:, -1], task.values)
        assert task.values.std() > 0.5  # real predictions, not a constant
        assert task.search_space == bench.search_space()
        for p in task.params:
            assert set(p) == set(task.search_space)
            assert isinstance(p["batch_size"], int) and isinstance(p["learning_rate"], float)
            for name, v in p.items():
                dist = task.search_space[name]
                assert dist._contains(dist.to_internal_repr(v)), (name, v)
        # The stored value is the surrogate's prediction for the stored parameters.
        direct = bench.evaluate(task_id, task.params[:5], outputs=["val_accuracy"])
        np.testing.assert_allclose(direct["val_accuracy"], task.values[:5], rtol=1e-4)
    assert data[0].params != data[1].params  # fresh configurations per task


@_needs("lcbench")
def test_lcbench_test_instances_excluded_by_default() -> None:
    data = load_yahpo("lcbench", 2, fidelity_curves=False)
    ids = {t.meta_features["openml_task_id"] for t in data}
    assert ids.isdisjoint(TEST_INSTANCES["lcbench"])
    assert len(data) == len(YahpoSurrogate("lcbench").tasks) - len(TEST_INSTANCES["lcbench"])
    assert all(t.steps.shape == (0,) and t.curves.shape == (2, 0) for t in data)
    with pytest.raises(ValueError, match="test instances"):
        load_yahpo("lcbench", 2, tasks=[TEST_INSTANCES["lcbench"][0]])
    held_out = load_yahpo(
        "lcbench", 2, tasks=[TEST_INSTANCES["lcbench"][0]], exclude_test_instances=False
    )
    assert held_out.task_names == [f"lcbench/{TEST_INSTANCES['lcbench'][0]}"]
    with pytest.raises(ValueError, match="not lcbench tasks"):
        load_yahpo("lcbench", 2, tasks=["999999"])


@_needs("lcbench")
def test_seeding_and_shared_configs() -> None:
    a = load_yahpo("lcbench", 5, tasks=LC_TASKS, seed=3)
    b = load_yahpo("lcbench", 5, tasks=LC_TASKS[::-1], seed=3)
    assert a["lcbench/3945"] == b["lcbench/3945"]  # independent of the other tasks
    c = load_yahpo("lcbench", 5, tasks=LC_TASKS, seed=4)
    assert a[0].params != c[0].params
    shared = load_yahpo("lcbench", 5, tasks=LC_TASKS, shared_configs=True)
    assert shared[0].params == shared[1].params
    assert not np.array_equal(shared[0].values, shared[1].values)


@_needs("rbv2_xgboost")
def test_xgboost_conditions_and_trainsize_curves(tmp_path) -> None:
    data = load_yahpo("rbv2_xgboost", 60, tasks=XGB_TASKS)
    bench = YahpoSurrogate("rbv2_xgboost")
    for task in data:
        assert task.objective == "acc" and task.direction == StudyDirection.MAXIMIZE
        np.testing.assert_array_equal(task.steps, np.arange(1, 11))  # trainsize = step / 10
        np.testing.assert_array_equal(task.curves[:, -1], task.values)
        assert ((task.values >= 0) & (task.values <= 1)).all()
        boosters = {p["booster"] for p in task.params}
        assert boosters == {"gblinear", "gbtree", "dart"}
        for p in task.params:
            active = {n for n in task.search_space if bench.is_active(n, p)}
            assert set(p) == active, p
            for name, v in p.items():
                dist = task.search_space[name]
                assert dist._contains(dist.to_internal_repr(v)), (name, v)
        x = task.to_arrays(["rate_drop", "eta"])
        dart = np.array([p["booster"] == "dart" for p in task.params])
        linear = np.array([p["booster"] == "gblinear" for p in task.params])
        assert np.isnan(x[~dart, 0]).all() and not np.isnan(x[dart, 0]).any()
        assert np.isnan(x[linear, 1]).all() and not np.isnan(x[~linear, 1]).any()
    final_only = load_yahpo("rbv2_xgboost", 60, tasks=XGB_TASKS, fidelity_curves=False)
    for a, b in zip(data, final_only, strict=True):
        assert a.params == b.params and b.curves.shape == (60, 0)
        np.testing.assert_allclose(a.values, b.values, atol=1e-5)
    path = data.save(tmp_path / "xgb.npz")
    assert MetaDataset.load(path) == data
    with pytest.raises(ValueError, match="test instances"):
        load_yahpo("rbv2_xgboost", 2, tasks=["1501"])
