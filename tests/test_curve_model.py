"""Tests of the curve model: features, numpy network, model files, training and the baseline."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import optuna
import pytest

from optuna_meta.curve import (
    FEATURE_NAMES,
    CurveModel,
    CurveNetwork,
    build_context,
    clean_curve,
    featurize,
)
from optuna_meta.curve._model_file import FORMAT_VERSION
from optuna_meta.curve._network import init_weights
from optuna_meta.surrogate import ModelFileError

STEPS = np.arange(1, 53, dtype=float)


def synthetic_curves(n: int, seed: int = 0) -> np.ndarray:
    """Saturating curves (n, 52) with finals spread over [40, 95]."""
    rng = np.random.default_rng(seed)
    final = rng.uniform(40, 95, n)
    tau = rng.uniform(2, 15, n)
    start = rng.uniform(5, 40, n)
    return final[:, None] - (final - start)[:, None] * np.exp(-STEPS[None, :] / tau[:, None])


def context_and_features(C, sign=1.0, transform=lambda v: v, steps=STEPS, cut=10):
    ctx = build_context(
        [clean_curve(steps, transform(c), sign) for c in C[:10]],
        sign * transform(C[:10, -1]),
        sign,
    )
    s, v = clean_curve(steps[:cut], transform(C[10, :cut]), sign)
    return ctx, featurize(ctx, s, v)


def test_features_are_scale_direction_and_step_free():
    C = synthetic_curves(12)
    ctx, ref = context_and_features(C)
    assert ref.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(ref))
    for sign, tf, steps in [
        (1.0, lambda v: v / 100.0, STEPS),
        (1.0, lambda v: 3.0 * v + 7.0, STEPS),
        (-1.0, lambda v: 100.0 - v, STEPS),
        (1.0, lambda v: v, STEPS * 500),
    ]:
        _, f = context_and_features(C, sign, tf, steps)
        np.testing.assert_allclose(f, ref, atol=1e-9)
    assert ctx.T == 52.0
    assert ctx.n_completed == 10


def test_context_normalisation_and_degenerate_inputs():
    C = synthetic_curves(12)
    ctx, _ = context_and_features(C)
    finals = C[:10, -1]
    assert ctx.centre == pytest.approx(np.median(finals))
    assert ctx.scale >= finals.max() - np.median(finals) - 1e-12
    assert float(ctx.to_user(ctx.a(finals.max()))) == pytest.approx(finals.max())
    # identical flat curves still give finite features
    flat = np.full((3, 52), 0.7)
    ctx2 = build_context([(STEPS, c) for c in flat], flat[:, -1], 1.0)
    assert ctx2 is not None and ctx2.scale > 0
    assert np.all(np.isfinite(featurize(ctx2, STEPS[:3], np.array([0.1, 0.2, 0.3]))))
    # nothing to normalise with
    assert build_context([], np.array([]), 1.0) is None
    assert build_context([(np.array([]), np.array([]))], np.array([0.5]), 1.0) is None
    assert build_context([(STEPS, flat[0])], np.array([np.nan]), 1.0) is None
    assert featurize(ctx, np.array([]), np.array([])) is None


def test_context_rows_keep_the_order_they_were_given():
    """A trial without reports or a finite final has no row; the rows keep their labels."""
    rows = [(STEPS, np.linspace(0.2, v, 52)) for v in (0.6, 0.7, 0.8)]
    rows.insert(1, (np.array([]), np.array([])))
    finals = np.array([0.6, 0.9, 0.7, np.nan])
    ctx = build_context(rows, finals, 1.0, None, np.array([10, 11, 12, 13]))
    assert ctx is not None
    np.testing.assert_array_equal(ctx.order, [10, 12])  # 11 reported nothing, 13 has no final
    assert build_context(rows, finals, 1.0).order is None


def test_rank_inputs_match_scipy_and_are_neutral_without_enough_curves():
    stats = pytest.importorskip("scipy.stats")
    from optuna_meta.curve._features import (
        MIN_RANK_CURVES,
        N_BASE_FEATURES,
        RANK_FEATURE_NAMES,
        RESID_PRIOR_WEIGHT,
        _at,
        average_ranks,
    )

    assert FEATURE_NAMES[N_BASE_FEATURES:] == RANK_FEATURE_NAMES
    rng = np.random.default_rng(0)
    steps = np.arange(1.0, 21.0)
    quality = rng.normal(size=12)
    curves = [80 + 5 * q - 30 * np.exp(-steps / 3) * (1 + 0.5 * rng.normal()) for q in quality]
    curves[3] = curves[3].copy()
    curves[3][:2] = curves[4][:2]  # a tie at the early fractions

    def context(k):
        return build_context(
            [(steps, c) for c in curves[:k]], np.array([c[-1] for c in curves[:k]]), 1.0
        )

    ctx = context(12)
    x = featurize(ctx, steps[:2], curves[0][:2])
    assert len(x) == len(FEATURE_NAMES) and np.all(np.isfinite(x))
    at_f = _at(ctx.curves, np.array([2 / 20]))[:, 0]
    assert x[-3] == pytest.approx(stats.spearmanr(at_f, ctx.finals_a).statistic, abs=1e-12)
    fit = stats.linregress(at_f, ctx.finals_a)
    a_last = ctx.a(curves[0][1])
    assert x[-2] == pytest.approx(fit.intercept + fit.slope * a_last, abs=1e-9)
    resid = ctx.finals_a - (fit.intercept + fit.slope * at_f)
    prior = RESID_PRIOR_WEIGHT * ctx.finals_a.var()  # shrunk towards the finals' own spread
    var = (resid @ resid + prior) / (len(resid) - 2 + RESID_PRIOR_WEIGHT)
    assert x[-1] == pytest.approx(np.log(np.sqrt(var)), abs=1e-9)
    # A far-off trial's line value stays within two units of the completed finals.
    far = featurize(ctx, steps[:2], np.array([-1e6, -1e6]))
    assert far[-2] == pytest.approx(ctx.finals_a.min() - 2.0)
    small = context(MIN_RANK_CURVES - 1)
    y = featurize(small, steps[:2], curves[0][:2])
    assert y[-3] == 0.0 and y[-2] == pytest.approx(np.median(small.finals_a))
    # The ranks are scipy's (ties share their average rank), without scipy.
    for values in (rng.normal(size=9), np.round(rng.normal(size=30)), np.ones(4), np.zeros(1)):
        np.testing.assert_array_equal(average_ranks(values), stats.rankdata(values))


def test_clean_curve_sorts_and_drops_non_finite():
    s, v = clean_curve(np.array([3, 1, 2, 2]), np.array([0.3, np.nan, 0.2, 0.25]), -1.0)
    np.testing.assert_array_equal(s, [2, 3])
    np.testing.assert_array_equal(v, [-0.25, -0.3])


def test_network_shapes_and_errors():
    n = len(FEATURE_NAMES)
    w = init_weights(n, 8, 0, np.zeros(n), np.ones(n))
    net = CurveNetwork(w)
    mean, std = net.predict(np.zeros((4, len(FEATURE_NAMES))))
    assert mean.shape == std.shape == (4,) and np.all(std > 0)
    with pytest.raises(ValueError):
        net.predict(np.zeros((4, 3)))
    bad = dict(w)
    bad["W2"] = np.zeros((3, 3))
    with pytest.raises(ValueError):
        CurveNetwork(bad)


def test_numpy_forward_matches_torch():
    torch = pytest.importorskip("torch")
    from optuna_meta.curve._train import torch_forward

    rng = np.random.default_rng(0)
    n = len(FEATURE_NAMES)
    w = init_weights(n, 16, 1, rng.normal(size=n), rng.uniform(0.5, 2, n))
    X = rng.normal(size=(7, n))
    mean, std = CurveNetwork(w).predict(X)
    tm, ts = torch_forward({k: torch.tensor(v) for k, v in w.items()}, torch.tensor(X))
    np.testing.assert_allclose(tm.numpy(), mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ts.numpy(), std, rtol=1e-10, atol=1e-10)


def test_tiny_training_round_trip(tmp_path):
    pytest.importorskip("torch")
    from optuna_meta.curve._train import CurveTrainConfig, build_curve_model, make_examples

    curves = {"a": synthetic_curves(60, 0), "b": synthetic_curves(60, 1)}
    X, y = make_examples(curves, 20, 4, seed=0)
    assert X.shape[1] == len(FEATURE_NAMES) and len(X) == len(y) > 0
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))
    cfg = CurveTrainConfig(n_episodes=40, queries_per_episode=4, hidden=8, epochs=2)
    model = build_curve_model(curves, cfg, name="tiny")
    path = model.save(tmp_path / "tiny.npz")
    loaded = CurveModel.load(path)
    assert loaded.manifest["name"] == "tiny"
    assert loaded.manifest["training_tasks"] == ["a", "b"]
    np.testing.assert_allclose(
        loaded.network().predict(X[:5])[0], model.network().predict(X[:5])[0], rtol=1e-5
    )


def test_training_extras_are_the_queried_trials_rows_on_an_unchanged_episode_stream():
    from optuna_meta.curve._train import _task_examples

    curves = {"a": synthetic_curves(60, 0), "b": synthetic_curves(60, 1)}
    curves["b"][7, 20] = np.nan  # a non-finite curve is dropped, and so is its extras row
    extras = {k: np.column_stack([np.arange(60.0), np.full(60, i)]) for i, k in enumerate(curves)}
    extras["b"][7] = -1.0
    X0, y0, t0 = _task_examples(curves, 30, 4, 0, (0.0, 100.0))
    X1, y1, t1 = _task_examples(curves, 30, 4, 0, (0.0, 100.0), extras=extras)
    n = len(FEATURE_NAMES)
    assert X1.shape == (len(X0), n + 2)
    np.testing.assert_array_equal(X1[:, :n], X0)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(t1, t0)
    assert np.all(X1[:, n + 1] == t1)  # each example carries a row of its own task
    rows = X1[:, n]
    assert rows.min() >= 0 and np.all(rows == np.round(rows)) and len(np.unique(rows)) > 20


def test_training_featurizer_replaces_the_features_on_an_unchanged_episode_stream():
    from optuna_meta.curve._features import featurize
    from optuna_meta.curve._train import _task_examples

    curves = {"a": synthetic_curves(60, 0), "b": synthetic_curves(60, 1)}
    seen = []

    def longer(ctx, steps, values):
        x = featurize(ctx, steps, values)
        seen.append(ctx.n_completed)
        return None if x is None else np.append(x, [ctx.n_completed, len(steps)])

    n = len(FEATURE_NAMES)
    X0, y0, t0 = _task_examples(curves, 30, 4, 0, (0.0, 100.0))
    X1, y1, t1 = _task_examples(
        curves, 30, 4, 0, (0.0, 100.0), featurizer=longer, n_features=n + 2
    )
    assert X1.shape == (len(X0), n + 2) and len(seen) == len(X0)
    np.testing.assert_array_equal(X1[:, :n], X0)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(t1, t0)
    assert np.all(X1[:, n] >= 1) and np.all(X1[:, n + 1] >= 1)
    assert len(np.unique(X1[:, n])) > 3  # each example's own context size


def test_training_augment_changes_the_curves_but_not_the_episode_stream():
    from optuna_meta.curve._train import _task_examples

    curves = {"a": synthetic_curves(60, 0), "b": synthetic_curves(60, 1)}
    X0, y0, t0 = _task_examples(curves, 30, 4, 0, (0.0, 100.0))
    X1, y1, _ = _task_examples(curves, 30, 4, 0, (0.0, 100.0), augment=lambda V, lo, hi: V)
    np.testing.assert_array_equal(X1, X0)
    np.testing.assert_array_equal(y1, y0)
    shapes = []

    def lower_finals(V, lo, hi):
        shapes.append(V.shape)
        out = V.copy()
        out[:, -1] -= 1.0
        return out

    X2, y2, t2 = _task_examples(curves, 30, 4, 0, (0.0, 100.0), augment=lower_finals)
    np.testing.assert_array_equal(t2, t0)  # the same tasks, contexts and queries
    n_steps = curves["a"].shape[1]
    assert len(shapes) == 30 and all(s[1] == n_steps for s in shapes)
    assert not np.array_equal(X2, X0) and not np.array_equal(y2, y0)


def test_shipped_model_manifest():
    model = CurveModel.load("lcbench-curve")
    m = model.manifest
    assert m["format"] == "optuna-meta/curve" and m["version"] == FORMAT_VERSION
    assert "python -m optuna_meta.curve._train" in m["command"]
    assert not {"167168", "189873", "189906"} & set(m["training_tasks"])
    assert len(m["training_tasks"]) == 31
    assert CurveModel.from_bytes(model.to_bytes()).manifest["name"] == m["name"]


def test_model_files_of_the_base_layout_still_load_and_predict(tmp_path):
    """A file made before the early-rank inputs (45 inputs) loads, and its network reads the
    leading features: it predicts as a full-layout network deaf to the rank inputs does."""
    import optuna

    from optuna_meta import MetaPruner
    from optuna_meta.curve._features import BASE_FEATURE_NAMES, N_BASE_FEATURES

    n, n0 = len(FEATURE_NAMES), N_BASE_FEATURES
    deaf = init_weights(n, 8, 0, np.zeros(n), np.ones(n))
    deaf["W1"][n0:] = 0.0
    old = {k: v.copy() for k, v in deaf.items()}
    old["W1"], old["x_mean"], old["x_std"] = deaf["W1"][:n0], np.zeros(n0), np.ones(n0)
    path = tmp_path / "old.npz"
    path.write_bytes(
        _npz_bytes(
            old,
            {
                "format": "optuna-meta/curve",
                "version": FORMAT_VERSION,
                "kappa": 2.0,
                "features": list(BASE_FEATURE_NAMES),
            },
        )
    )
    loaded = CurveModel.load(path)
    assert loaded.network().n_inputs == n0
    assert CurveModel.from_bytes(loaded.to_bytes()).manifest["features"] == list(
        BASE_FEATURE_NAMES
    )
    full = CurveModel(deaf)
    assert CurveModel.from_bytes(full.to_bytes()).manifest["features"] == list(FEATURE_NAMES)

    study = optuna.create_study(direction="maximize")
    for i in range(6):
        t = study.ask()
        t.report(50.0 + i, 1)
        t.report(60.0 + i, 10)
        study.tell(t, 60.0 + i)
    t = study.ask()
    t.report(52.0, 1)
    frozen = study._storage.get_trial(t._trial_id)
    got_old = MetaPruner(model=str(path)).predict(study, frozen)
    got_full = MetaPruner(model=full).predict(study, frozen)
    assert got_old is not None and np.isfinite(got_old.mean)
    assert got_old.mean == pytest.approx(got_full.mean, abs=1e-9)
    assert got_old.std == pytest.approx(got_full.std, abs=1e-9)
    # A network that reads the rank inputs too is not deaf to them.
    hearing = init_weights(n, 8, 0, np.zeros(n), np.ones(n))
    moved = MetaPruner(model=CurveModel(hearing)).predict(study, frozen)
    assert moved.mean != pytest.approx(got_full.mean, abs=1e-9)
    # The manifest must name the layout the network was trained on.
    with pytest.raises(ModelFileError, match="disagree"):
        CurveModel.from_bytes(
            _npz_bytes(deaf, {**loaded.manifest, "features": list(BASE_FEATURE_NAMES)})
        )


def _npz_bytes(arrays: dict, manifest: dict | None) -> bytes:
    payload = dict(arrays)
    if manifest is not None:
        payload["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **payload)
    return buf.getvalue()


def test_model_file_errors(tmp_path):
    good = CurveModel.load("lcbench-curve")
    weights = good.weights
    manifest = dict(good.manifest)
    with pytest.raises(ModelFileError, match="No model file"):
        CurveModel.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ModelFileError, match="not a readable"):
        CurveModel.load(junk)
    with pytest.raises(ModelFileError, match="no manifest"):
        CurveModel.from_bytes(_npz_bytes(weights, None))
    with pytest.raises(ModelFileError, match="not an optuna-meta curve model"):
        CurveModel.load("lcbench-mlp")  # the sampler's surrogate: a foreign format here
    with pytest.raises(ModelFileError, match="version"):
        CurveModel.from_bytes(_npz_bytes(weights, {**manifest, "version": FORMAT_VERSION + 1}))
    with pytest.raises(ModelFileError, match="feature layout"):
        CurveModel.from_bytes(_npz_bytes(weights, {**manifest, "features": ["f"]}))
    with pytest.raises(ModelFileError, match="lacks weight"):
        CurveModel.from_bytes(_npz_bytes({"W1": weights["W1"]}, manifest))
    nan_w = {**weights, "b1": np.full_like(weights["b1"], np.nan)}
    with pytest.raises(ModelFileError, match="non-finite"):
        CurveModel.from_bytes(_npz_bytes(nan_w, manifest))
    bad_shape = {**weights, "W3": np.zeros((3, 2))}
    with pytest.raises(ModelFileError, match="inconsistent"):
        CurveModel.from_bytes(_npz_bytes(bad_shape, manifest))
    corrupt = _npz_bytes(weights, None)
    buf = io.BytesIO()
    np.savez(buf, **weights, manifest=np.frombuffer(b"\xff\xfe{", dtype=np.uint8))
    with pytest.raises(ModelFileError, match="corrupt manifest"):
        CurveModel.from_bytes(buf.getvalue())
    assert corrupt  # (no pickle anywhere: np.load(..., allow_pickle=False) is used)


def test_domhan_baseline_extrapolates_a_power_law():
    pytest.importorskip("scipy")
    from benchmarks.curve_baseline import extrapolate

    y = 90.0 - 50.0 * STEPS**-0.7
    mean, std = extrapolate(STEPS[:26], y[:26], 52.0)
    assert abs(mean - y[-1]) < abs(y[25] - y[-1])  # better than the last value
    assert std > 0
    assert extrapolate(STEPS[:2], y[:2], 52.0)[0] == y[1]


def test_build_curve_model_refuses_curves_that_are_not_two_dimensional() -> None:
    from optuna_meta.curve._train import CurveTrainConfig, build_curve_model

    with pytest.raises(ValueError, match=r"2-D array .* got shapes \{'a': \(30,\)\}"):
        build_curve_model({"a": np.zeros(30)}, CurveTrainConfig(n_episodes=2))
    with pytest.raises(TypeError, match="config must be a CurveTrainConfig"):
        build_curve_model({"a": np.zeros((3, 30))}, {"n_episodes": 2})  # type: ignore[arg-type]


@pytest.mark.parametrize("n_steps", [2, 3, 4])
def test_training_on_curves_of_two_to_four_steps(n_steps: int) -> None:
    """Studies that report once per cross-validation fold (2-4 steps) train: the sparse
    reporting schedule drew up to 5 distinct steps and crashed (numpy: 'Cannot take a larger
    sample than population')."""
    pytest.importorskip("torch")
    from optuna_meta.curve._train import CurveTrainConfig, build_curve_model

    curves = {k: synthetic_curves(30, seed)[:, -n_steps:] for seed, k in enumerate("abc")}
    cfg = CurveTrainConfig(n_episodes=60, queries_per_episode=4, hidden=8, epochs=1)
    model = build_curve_model(curves, cfg, name="few-steps")
    assert model.manifest["training_tasks"] == ["a", "b", "c"]


def test_curves_left_out_are_counted_in_the_warning() -> None:
    """Runs that diverged (an inf report) or stopped early are not complete curves: the
    warning says how many, where it only counted the complete ones."""
    from optuna_meta.curve._curves import curves_from_dataset
    from optuna_meta.data import load_from_storage

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="s", storage=storage)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(1, 11):
            diverged = trial.number % 4 == 0 and step > 6
            stopped = trial.number % 4 == 1 and step > 5
            if stopped:
                break
            trial.report(math.inf if diverged else x / step, step)
        return x

    study.optimize(objective, n_trials=12)
    with pytest.warns(UserWarning, match=r"6 complete .*; 3 diverged .*; 3 end before it"):
        with pytest.raises(ValueError, match="No task has 20"):
            curves_from_dataset(load_from_storage(storage))
