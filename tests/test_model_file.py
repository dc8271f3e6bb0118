"""Surrogate model files: round trip, the shipped model, and refusal of anything suspicious."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import distribution_to_json
from optuna.trial import TrialState

from optuna_meta import MetaPruner, MetaSampler
from optuna_meta._model_io import model_bytes
from optuna_meta.curve import CurveModel
from optuna_meta.data import TEST_INSTANCES
from optuna_meta.sampler import ATTR_SOURCE
from optuna_meta.space import SpaceEncoder
from optuna_meta.surrogate import (
    FORMAT_VERSION,
    ModelFileError,
    SurrogateModel,
    resolve_model_path,
    shipped_models,
)
from optuna_meta.surrogate._model_file import FORMAT_NAME, MANIFEST_KEY

optuna.logging.set_verbosity(optuna.logging.WARNING)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped() -> SurrogateModel:
    return SurrogateModel.load("lcbench-mlp")


def _manifest(model: SurrogateModel, **changes: Any) -> dict[str, Any]:
    manifest = {
        **model.manifest,
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "search_space": {k: distribution_to_json(v) for k, v in model.search_space.items()},
        "parameter_order": list(model.search_space),
        "defaults": model.defaults,
    }
    manifest.update(changes)
    return manifest


def _write(path: Path, manifest: dict[str, Any] | None, arrays: dict[str, Any]) -> Path:
    payload = dict(arrays)
    if manifest is not None:
        text = json.dumps(manifest).encode("utf-8")
        payload[MANIFEST_KEY] = np.frombuffer(text, dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **payload)
    return path


# -- round trip ----------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path: Path, shipped: SurrogateModel) -> None:
    rng = np.random.default_rng(0)
    weights = {k: v + rng.normal(0, 0.01, v.shape) for k, v in shipped.weights.items()}
    model = SurrogateModel(
        weights=weights,
        search_space=dict(shipped.search_space),
        defaults=dict(shipped.defaults),
        manifest={"name": "round-trip", "training_tasks": ["a/1", "b/2"], "metric": 0.5},
    )
    path = model.save(tmp_path / "sub" / "model.npz")
    assert path.is_file()
    loaded = SurrogateModel.load(path)
    assert set(loaded.weights) == set(weights)
    for k, w in weights.items():
        assert loaded.weights[k].dtype == np.float64
        assert loaded.weights[k].shape == w.shape
        np.testing.assert_allclose(loaded.weights[k], w, rtol=1e-6, atol=1e-7)  # float32 file
    assert loaded.search_space == model.search_space
    assert list(loaded.search_space) == list(model.search_space)  # feature order
    assert loaded.defaults == model.defaults
    assert loaded.manifest["name"] == "round-trip"
    assert loaded.manifest["training_tasks"] == ["a/1", "b/2"]
    assert loaded.manifest["metric"] == 0.5
    assert loaded.manifest["format"] == FORMAT_NAME
    assert loaded.manifest["version"] == FORMAT_VERSION
    again = SurrogateModel.from_bytes(loaded.to_bytes())
    for k in weights:
        np.testing.assert_array_equal(again.weights[k], loaded.weights[k])
    X = rng.random((5, loaded.network().n_inputs))
    np.testing.assert_allclose(
        loaded.network().meta_mean(X), model.network().meta_mean(X), rtol=1e-4, atol=1e-5
    )


def test_feature_order_survives_save_load(tmp_path: Path, shipped: SurrogateModel) -> None:
    """A model trained in non-alphabetical parameter order predicts the same after a round trip.

    The manifest's JSON is written with sorted keys; version 1 files lost the input-feature
    order that way and a reloaded model read its inputs permuted.
    """
    order = ["weight_decay", "num_layers", "learning_rate", "batch_size"]
    order += [k for k in shipped.search_space if k not in order]
    assert order != sorted(order)
    model = SurrogateModel(
        weights=dict(shipped.weights),
        search_space={k: shipped.search_space[k] for k in order},
        defaults=dict(shipped.defaults),
    )
    loaded = SurrogateModel.load(model.save(tmp_path / "m.npz"))
    assert list(loaded.search_space) == order
    rng = np.random.default_rng(1)
    configs = [
        {k: model.defaults[k] for k in order} | {"learning_rate": lr, "batch_size": b}
        for lr, b in zip(10 ** rng.uniform(-4, -1, 6), rng.integers(16, 512, 6), strict=True)
    ]
    before = model.network().meta_mean(SpaceEncoder(model.search_space).encode(configs))
    after = loaded.network().meta_mean(SpaceEncoder(loaded.search_space).encode(configs))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)


def test_version_1_file_is_refused(tmp_path: Path, shipped: SurrogateModel) -> None:
    manifest = _manifest(shipped, version=1)
    del manifest["parameter_order"]
    path = _write(tmp_path / "v1.npz", manifest, shipped.weights)
    with pytest.raises(ModelFileError, match="Re-train the model"):
        SurrogateModel.load(path)


def test_parameter_order_must_match_the_space(tmp_path: Path, shipped: SurrogateModel) -> None:
    manifest = _manifest(shipped, parameter_order=list(shipped.search_space)[:-1])
    path = _write(tmp_path / "bad_order.npz", manifest, shipped.weights)
    with pytest.raises(ModelFileError, match="parameter_order"):
        SurrogateModel.load(path)


def test_shipped_model(shipped: SurrogateModel) -> None:
    assert "lcbench-mlp" in shipped_models()
    path = resolve_model_path("lcbench-mlp")
    assert path.stat().st_size < 5 * 1024 * 1024
    assert shipped.manifest["name"] == "lcbench-mlp"
    assert set(shipped.search_space) == {
        "batch_size",
        "learning_rate",
        "momentum",
        "weight_decay",
        "num_layers",
        "hidden_size",
        "dropout",
    }
    tasks = shipped.manifest["training_tasks"]
    assert len(tasks) > 10
    assert all(t.startswith("lcbench/") for t in tasks)  # "<scenario>/<OpenML task id>"
    for test_id in TEST_INSTANCES["lcbench"]:
        assert f"lcbench/{test_id}" not in tasks
    assert {"lcbench/167168", "lcbench/189873", "lcbench/189906"}.isdisjoint(tasks)
    for name, dist in shipped.search_space.items():
        value = shipped.defaults[name]
        assert dist._contains(dist.to_internal_repr(value))


def test_shipped_xgboost_model() -> None:
    model = SurrogateModel.load("rbv2-xgboost")
    assert "rbv2-xgboost" in shipped_models()
    assert resolve_model_path("rbv2-xgboost").stat().st_size < 5 * 1024 * 1024
    assert model.manifest["name"] == "rbv2-xgboost"
    known = {"booster", "learning_rate", "max_depth", "n_estimators", "subsample", "reg_lambda"}
    assert known <= set(model.search_space)
    tasks = model.manifest["training_tasks"]
    assert len(tasks) > 100
    assert all(t.startswith("rbv2_xgboost/") for t in tasks)
    for test_id in TEST_INSTANCES["rbv2_xgboost"]:
        assert f"rbv2_xgboost/{test_id}" not in tasks
    assert {"rbv2_xgboost/12", "rbv2_xgboost/1501", "rbv2_xgboost/16"}.isdisjoint(tasks)
    assert "rbv2_xgboost/40499" not in tasks
    assert len(model.initial_design) == 10


def test_shipped_default_design_hedges_for_short_runs(shipped: SurrogateModel) -> None:
    """``lcbench-mlp`` learns its second entry at epochs 5 and 52 and the others at epoch 52
    (``--design-budgets 5,52 --design-first-budget 52 --design-hedging 1``): the second entry
    is one that trains in few steps, with low momentum, where the first uses LCBench's momentum
    0.99 corner. The manifest's command reproduces the design and the optima (session 29)."""
    command = shipped.manifest["command"]
    assert "--design-budgets 5,52" in command and "--design-first-budget 52" in command
    assert "--design-hedging 1" in command
    first, second = shipped.initial_design[:2]
    assert first["momentum"] > 0.9 and second["momentum"] < 0.5
    assert shipped.manifest["design_fixed_trials"] == 2


def test_shipped_short_run_model_differs_only_in_its_design(shipped: SurrogateModel) -> None:
    """``lcbench-mlp-short`` is trained like ``lcbench-mlp`` but learns its design at epochs 5
    and 52 (``--design-budgets 5,52``): same tasks and space, another first trial."""
    short = SurrogateModel.load("lcbench-mlp-short")
    assert "lcbench-mlp-short" in shipped_models()
    assert resolve_model_path("lcbench-mlp-short").stat().st_size < 5 * 1024 * 1024
    assert short.manifest["name"] == "lcbench-mlp-short"
    assert "--design-budgets 5,52" in short.manifest["command"]
    assert short.manifest["training_tasks"] == shipped.manifest["training_tasks"]
    assert dict(short.search_space) == dict(shipped.search_space)
    for test_id in TEST_INSTANCES["lcbench"]:
        assert f"lcbench/{test_id}" not in short.manifest["training_tasks"]
    assert len(short.initial_design) == 10
    assert short.initial_design[0] != shipped.initial_design[0]
    assert short.defaults == {**short.defaults, **short.initial_design[0]}


# -- refusals ------------------------------------------------------------------------------------
def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="No model file"):
        SurrogateModel.load(tmp_path / "missing.npz")
    with pytest.raises(ModelFileError, match="lcbench-mlp"):  # lists the shipped models
        SurrogateModel.load("no-such-model")
    with pytest.raises(ModelFileError):
        SurrogateModel.load(tmp_path)  # a folder


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="not a readable optuna-meta model file"):
        SurrogateModel.load(path)
    with pytest.raises(ModelFileError):
        SurrogateModel.from_bytes(b"PK\x03\x04 truncated zip")


def test_plain_npz_without_manifest(tmp_path: Path, shipped: SurrogateModel) -> None:
    path = _write(tmp_path / "plain.npz", None, shipped.weights)
    with pytest.raises(ModelFileError, match="no manifest"):
        SurrogateModel.load(path)


def test_single_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "array.npz"
    with open(path, "wb") as f:
        np.save(f, np.arange(3.0))
    with pytest.raises(ModelFileError):
        SurrogateModel.load(path)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"format": "optuna-meta/meta-dataset"}, "not an optuna-meta surrogate model file"),
        ({"format": None}, "not an optuna-meta surrogate model file"),
        ({"version": FORMAT_VERSION + 1}, "Upgrade optuna-meta"),
        ({"version": 0}, "format version 0"),
        ({"version": "1"}, "format version '1'"),
        ({"search_space": {"x": "not json"}}, "invalid search space"),
        ({"defaults": {"batch_size": 32}}, "defaults lack"),
    ],
    ids=["foreign", "no-format", "newer", "zero", "string", "bad-space", "bad-defaults"],
)
def test_bad_manifest(
    tmp_path: Path, shipped: SurrogateModel, changes: dict[str, Any], match: str
) -> None:
    path = _write(tmp_path / "m.npz", _manifest(shipped, **changes), shipped.weights)
    with pytest.raises(ModelFileError, match=match):
        SurrogateModel.load(path)


def test_manifest_not_json(tmp_path: Path, shipped: SurrogateModel) -> None:
    arrays = {**shipped.weights, MANIFEST_KEY: np.frombuffer(b"\xff{not json", dtype=np.uint8)}
    path = _write(tmp_path / "m.npz", None, arrays)
    with pytest.raises(ModelFileError, match="corrupt manifest"):
        SurrogateModel.load(path)


def test_manifest_not_an_object(tmp_path: Path, shipped: SurrogateModel) -> None:
    arrays = {**shipped.weights, MANIFEST_KEY: np.frombuffer(b"[1, 2]", dtype=np.uint8)}
    with pytest.raises(ModelFileError, match="not an optuna-meta surrogate model file"):
        SurrogateModel.load(_write(tmp_path / "m.npz", None, arrays))


def test_missing_weight_arrays(tmp_path: Path, shipped: SurrogateModel) -> None:
    weights = {k: v for k, v in shipped.weights.items() if k not in ("Wf", "log_noise")}
    path = _write(tmp_path / "m.npz", _manifest(shipped), weights)
    with pytest.raises(ModelFileError, match="lacks weight arrays") as info:
        SurrogateModel.load(path)
    assert "Wf" in str(info.value) and "log_noise" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_path: Path, shipped: SurrogateModel, bad: float) -> None:
    weights = dict(shipped.weights)
    weights["W2"] = weights["W2"].copy()
    weights["W2"][3, 4] = bad
    path = _write(tmp_path / "m.npz", _manifest(shipped), weights)
    with pytest.raises(ModelFileError, match="non-finite"):
        SurrogateModel.load(path)


@pytest.mark.parametrize(
    "changes",
    [
        {"W1": np.asarray(1.0)},
        {"W1": np.ones((8, 64))},  # another number of input features than the space
        {"wm": np.ones((64, 2))},
        {"bf": np.ones(3)},
        {"b1": np.ones(5)},
        {"log_amp": np.ones(3)},
        {"W2": np.ones((63, 64))},
    ],
    ids=["W1-scalar", "W1-inputs", "wm-2d", "bf", "b1", "log_amp", "W2"],
)
def test_wrong_weight_shapes(
    tmp_path: Path, shipped: SurrogateModel, changes: dict[str, np.ndarray]
) -> None:
    path = _write(tmp_path / "m.npz", _manifest(shipped), {**shipped.weights, **changes})
    with pytest.raises(ModelFileError):
        SurrogateModel.load(path)


class _Evil:
    """Unpickling this object would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_pickled_object_array_is_refused_without_running_it(
    tmp_path: Path, shipped: SurrogateModel
) -> None:
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil(marker)
    for key in ("W1", "extra"):  # np.savez pickles object arrays into the file
        path = _write(
            tmp_path / f"evil-{key}.npz", _manifest(shipped), {**shipped.weights, key: evil}
        )
        with pytest.raises(ModelFileError):
            SurrogateModel.load(path)
        with pytest.raises(ModelFileError):
            SurrogateModel.from_bytes(path.read_bytes())
        assert not marker.exists()
    # the same file given to the sampler: a warning and the fallback, still no code run
    sampler = MetaSampler(model=path, seed=0, n_candidates=64)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert {t.user_attrs[ATTR_SOURCE] for t in study.trials} == {"fallback"}
    assert not marker.exists()
    # sanity check: the payload really is live when pickle is allowed
    with np.load(path, allow_pickle=True) as npz:
        npz["extra"]
    assert marker.exists()


def test_too_large_file_is_refused(
    tmp_path: Path, shipped: SurrogateModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna_meta._model_io as model_io

    path = shipped.save(tmp_path / "m.npz")
    curve = tmp_path / "c.npz"
    curve.write_bytes(CurveModel.load("lcbench-curve").to_bytes())
    monkeypatch.setattr(model_io, "MAX_MODEL_BYTES", 100)
    with pytest.raises(ModelFileError, match="larger than"):
        SurrogateModel.load(path)
    # Also when the sampler or pruner is made: refused only at the first trial, the whole
    # study went to the fallback with a log line.
    with pytest.raises(ModelFileError, match="larger than"):
        MetaSampler(model=path)
    with pytest.raises(ModelFileError, match="larger than"):
        MetaPruner(model=curve)


def test_bad_model_file_in_the_sampler_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    with pytest.raises(ModelFileError, match=r"junk\.npz is not a readable"):  # fails fast
        MetaSampler(model=junk)
    # A file whose manifest passes the constructor's check but whose weights do not load
    # (as a file replaced or cut short after the sampler was made): every trial goes to the
    # fallback, with one warning.
    path = tmp_path / "no_weights.npz"
    path.write_bytes(model_bytes({}, {"format": FORMAT_NAME, "version": FORMAT_VERSION}))
    study = optuna.create_study(sampler=MetaSampler(model=path, seed=0, n_candidates=64))

    def objective(t: optuna.Trial) -> float:
        return t.suggest_float("lr", 1e-4, 1e-1, log=True) + t.suggest_float("dropout", 0, 1)

    with caplog.at_level(logging.WARNING):
        study.optimize(objective, n_trials=4)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert [t.user_attrs[ATTR_SOURCE] for t in study.trials] == ["fallback"] * 4
    # Said once, not once per parameter and trial.
    said = [r.getMessage() for r in caplog.records if "ModelFileError" in r.getMessage()]
    assert len(said) == 1 and "could not load its model" in said[0], said


# -- no torch on the sampling path ---------------------------------------------------------------
def test_sampling_does_not_import_torch() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import optuna_meta
        after_import = sorted(m for m in ("torch", "onnxruntime") if m in sys.modules)
        import optuna
        from optuna_meta import MetaSampler
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=MetaSampler(seed=0, n_candidates=64))
        study.optimize(lambda t: t.suggest_float("lr", 1e-4, 0.1, log=True), n_trials=3)
        sources = [t.user_attrs["optuna_meta:source"] for t in study.trials]
        after_sampling = sorted(m for m in ("torch", "onnxruntime") if m in sys.modules)
        print(json.dumps([after_import, after_sampling, sources]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=120,
    )
    after_import, after_sampling, sources = json.loads(out.stdout.strip().splitlines()[-1])
    assert after_import == []
    assert after_sampling == []
    assert sources == ["meta"] * 3


def test_model_bytes_are_a_loadable_file(shipped: SurrogateModel) -> None:
    data = shipped.to_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert MANIFEST_KEY in npz.files
        assert all(npz[k].dtype != object for k in npz.files)


def test_a_truncated_model_file_is_refused_without_leaving_it_open(
    shipped: SurrogateModel, tmp_path: Path
) -> None:
    import gc
    import warnings

    data = shipped.save(tmp_path / "m.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(ModelFileError, match="not a readable"):
            SurrogateModel.load(cut)
        gc.collect()
    assert not [w for w in record if issubclass(w.category, ResourceWarning)]


def test_a_wrong_model_argument_fails_when_the_sampler_is_made(tmp_path: Path) -> None:
    """A typo, a folder or a curve model must not send a whole study to TPE unnoticed."""
    with pytest.raises(ModelFileError, match="No model file 'lcbench-mpl'") as info:
        MetaSampler(model="lcbench-mpl")
    message = str(info.value)
    assert "lcbench-mlp" in message and "lcbench-curve" not in message  # samplers' models only
    with pytest.raises(ModelFileError, match="is a folder"):
        MetaSampler(model=tmp_path)
    with pytest.raises(ModelFileError, match="MetaPruner curve model"):
        MetaSampler(model="lcbench-curve")
    text = tmp_path / "notes.npz"
    text.write_text("a text file, not a model\n")
    with pytest.raises(ModelFileError, match=r"not an \.npz archive") as info:
        MetaSampler(model=text)
    assert "pickle" not in str(info.value)
    newer = tmp_path / "newer.npz"
    newer.write_bytes(model_bytes({}, {"format": FORMAT_NAME, "version": FORMAT_VERSION + 1}))
    with pytest.raises(ModelFileError, match="Upgrade optuna-meta"):
        MetaSampler(model=newer)
    older = tmp_path / "older.npz"
    older.write_bytes(model_bytes({}, {"format": FORMAT_NAME, "version": 1}))
    with pytest.raises(ModelFileError, match="Re-train"):
        MetaSampler(model=older)
    MetaSampler(model="lcbench-mlp")  # shipped names and good files are fine


def test_a_file_that_unpacks_to_more_than_the_limit_is_refused_before_it_is_unpacked(
    tmp_path: Path, shipped: SurrogateModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An npz is a zip archive: 0.5 MB on disk can unpack to 500 MB (a manifest padded with
    # spaces took 2 GB of memory to load). Both the construction-time check, which reads the
    # manifest alone, and the full load refuse such a file from its members' listed sizes.
    import optuna_meta._model_io as model_io

    path = shipped.save(tmp_path / "m.npz")
    monkeypatch.setattr(model_io, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(ModelFileError, match="unpacks to"):
        SurrogateModel.load(path)
    with pytest.raises(ModelFileError, match="unpacks to"):
        MetaSampler(model=path)


@pytest.mark.parametrize("kind", ["str", "complex"])
def test_weights_that_are_not_real_numbers_are_refused(
    tmp_path: Path, shipped: SurrogateModel, kind: str
) -> None:
    # A cast to float read digit strings and dropped imaginary parts without a word.
    with np.load(io.BytesIO(shipped.to_bytes()), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["W1"] = arrays["W1"].astype(str) if kind == "str" else arrays["W1"] + 1j
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)  # as written, not through model_bytes' float32 cast
    with pytest.raises(ModelFileError, match="not real numbers"):
        SurrogateModel.load(path)


def test_defaults_outside_the_search_space_are_refused_at_load(
    tmp_path: Path, shipped: SurrogateModel
) -> None:
    # They surfaced only once a study ran, which then went to the fallback as a whole.
    with np.load(io.BytesIO(shipped.to_bytes()), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays.pop(MANIFEST_KEY).tobytes())
    manifest["defaults"] = {**manifest["defaults"], "learning_rate": "abc"}
    path = tmp_path / "m.npz"
    path.write_bytes(model_bytes(arrays, manifest))
    with pytest.raises(ModelFileError, match="Model default value learning_rate='abc'"):
        SurrogateModel.load(path)


def test_a_model_path_under_the_home_folder_may_start_with_a_tilde(
    tmp_path: Path, shipped: SurrogateModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    shipped.save(tmp_path / "m.npz")
    assert resolve_model_path("~/m.npz") == tmp_path / "m.npz"
    study = optuna.create_study(sampler=MetaSampler(model="~/m.npz", seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=1)
    assert study.trials[0].user_attrs[ATTR_SOURCE] == "meta"
