"""Tests of the curve model's tail calibration: fitting, reading, model files, the pruner."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from optuna_meta import MetaPruner
from optuna_meta.curve import CurveModel
from optuna_meta.curve._calibration import CALIBRATION_NAMES, TAIL_LEVELS, TailCalibration
from optuna_meta.pruner import ATTR_PROB_IMPROVEMENT
from optuna_meta.surrogate import ModelFileError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def test_gaussian_errors_reproduce_the_gaussian_tail():
    rng = np.random.default_rng(0)
    z = rng.normal(size=1_000_000)
    cal = TailCalibration.fit(z, rng.random(z.size))
    assert cal is not None and len(cal.f) == 8  # every fraction range had enough errors
    for q in (0.0, 1.0, 1.645, 2.054, 2.5):
        for f in (0.01, 0.3, 0.95):
            # sampling error plus linear interpolation of the CDF between stored levels
            assert cal.survival(q, f) == pytest.approx(normal_sf(q), rel=0.12, abs=0.005)


def test_heavy_early_tail_raises_early_probabilities_only():
    rng = np.random.default_rng(1)
    f = rng.random(100_000)
    z = np.where(f < 0.25, rng.standard_t(3, size=f.size), 0.5 * rng.normal(size=f.size))
    cal = TailCalibration.fit(z, f)
    assert cal is not None
    assert cal.survival(2.5, 0.05) > 2 * normal_sf(2.5)  # heavier than the Gaussian early
    assert cal.survival(2.5, 0.9) < 0.1 * normal_sf(2.5)  # lighter late


def test_survival_is_monotone_and_continuous_beyond_the_table():
    rng = np.random.default_rng(2)
    f = rng.random(50_000)
    cal = TailCalibration.fit(rng.standard_t(4, size=f.size) * (1 + f), f)
    assert cal is not None
    for frac in (0.0, 0.13, 0.5, 1.0):
        zs = np.linspace(-8, 12, 801)
        p = np.array([cal.survival(v, frac) for v in zs])
        assert np.all(np.diff(p) <= 1e-12) and np.all((p >= 0) & (p <= 1))
        top = cal.quantiles(frac)[-1]
        below, above = cal.survival(top - 1e-9, frac), cal.survival(top + 1e-9, frac)
        assert above == pytest.approx(below, abs=1e-6)
        assert above == pytest.approx(1 - TAIL_LEVELS[-1], rel=1e-4)
    assert math.isnan(cal.survival(math.nan, 0.5))


def test_too_few_errors_give_one_row_or_none():
    rng = np.random.default_rng(3)
    few = TailCalibration.fit(rng.normal(size=900), rng.random(900))  # < 500 per range
    assert few is not None and len(few.f) == 1
    assert TailCalibration.fit(rng.normal(size=100), rng.random(100)) is None
    # NaN errors are ignored, fractions outside [0, 1] are clipped
    z = np.concatenate([rng.normal(size=2000), [np.nan] * 50])
    assert TailCalibration.fit(z, np.linspace(-0.5, 1.5, z.size)) is not None


@pytest.mark.parametrize(
    "f, levels, z",
    [
        ([0.1, 0.1], [0.1, 0.9], [[0.0, 1.0], [0.0, 1.0]]),  # fractions not increasing
        ([0.1], [0.0, 0.9], [[0.0, 1.0]]),  # a level outside (0, 1)
        ([0.1], [0.1, 0.9], [[1.0, 0.0]]),  # quantiles not increasing
        ([0.1], [0.1, 0.9], [[0.0, np.inf]]),  # not finite
        ([0.1], [0.1, 0.9], [[0.0, 1.0], [0.0, 1.0]]),  # shapes
    ],
)
def test_bad_arrays_are_refused(f, levels, z):
    with pytest.raises(ValueError):
        TailCalibration(np.asarray(f), np.asarray(levels), np.asarray(z))


def _shipped_with(arrays: dict[str, np.ndarray]) -> CurveModel:
    base = CurveModel.load("lcbench-curve")
    weights = {k: v for k, v in base.weights.items() if k not in CALIBRATION_NAMES}
    return CurveModel(weights={**weights, **arrays}, manifest=dict(base.manifest))


def test_model_files_keep_or_refuse_a_calibration():
    z = np.array([[-1.0, 0.0, 3.0], [-1.0, 0.0, 1.0]])
    cal = TailCalibration(np.array([0.2, 0.7]), np.array([0.1, 0.5, 0.9]), z)
    model = _shipped_with(cal.arrays())
    loaded = CurveModel.from_bytes(model.to_bytes()).calibration()
    assert loaded is not None  # float32 in the file
    assert loaded.survival(1.0, 0.2) == pytest.approx(cal.survival(1.0, 0.2), rel=1e-6)
    assert _shipped_with({}).calibration() is None
    partial = _shipped_with({"tail_f": cal.f})
    with pytest.raises(ModelFileError, match="partial tail calibration"):
        CurveModel.from_bytes(partial.to_bytes())
    bad = _shipped_with({**cal.arrays(), "tail_z": cal.z[:, ::-1].copy()})
    with pytest.raises(ModelFileError, match="increasing"):
        CurveModel.from_bytes(bad.to_bytes())


def _prob(model: CurveModel, **kwargs) -> float:
    from tests.test_pruner import BAD, STEPS, make_study, run_partial

    study = make_study(MetaPruner(model, **kwargs))
    _, frozen = run_partial(study, BAD, STEPS[:15])
    return frozen.user_attrs[ATTR_PROB_IMPROVEMENT]


def test_pruner_reads_its_probability_from_the_calibration():
    # A calibration whose errors are the Gaussian's shifted up by 3 sd: the bad curve's tiny
    # Gaussian probability becomes large, and calibrated=False ignores the table.
    levels = np.array(TAIL_LEVELS)
    from statistics import NormalDist

    shifted = np.array([[NormalDist().inv_cdf(p) + 3.0 for p in levels]])
    model = _shipped_with({"tail_f": np.array([0.5]), "tail_levels": levels, "tail_z": shifted})
    plain = _shipped_with({})
    p_gauss = _prob(plain)
    assert _prob(model, calibrated=False) == pytest.approx(p_gauss, rel=1e-12)
    p_cal = _prob(model)
    assert p_gauss < 0.01 and p_cal > 10 * p_gauss


def test_training_adds_a_calibration_without_changing_the_network():
    pytest.importorskip("torch")
    from optuna_meta.curve._train import CurveTrainConfig, build_curve_model
    from tests.test_curve_model import synthetic_curves

    curves = {k: synthetic_curves(40, i) for i, k in enumerate("abcd")}
    base = dict(n_episodes=200, queries_per_episode=4, hidden=8, epochs=2)
    cal_model = build_curve_model(curves, CurveTrainConfig(**base, calibration_folds=2))
    plain = build_curve_model(curves, CurveTrainConfig(**base, calibration_folds=0))
    assert plain.calibration() is None and plain.manifest["tail_calibration"]["folds"] == 0
    cal = cal_model.calibration()
    assert cal is not None and cal_model.manifest["tail_calibration"]["folds"] == 2
    assert cal_model.manifest["tail_calibration"]["calibrated"] is True
    for k, v in plain.weights.items():
        np.testing.assert_array_equal(cal_model.weights[k], v)
    assert CurveModel.from_bytes(cal_model.to_bytes()).calibration() is not None


@pytest.mark.parametrize(
    "bad", [{"n_episodes": 0}, {"queries_per_episode": 0}, {"calibration_folds": -1}]
)
def test_bad_training_settings_are_refused(bad):
    pytest.importorskip("torch")
    from optuna_meta.curve._train import CurveTrainConfig, build_curve_model
    from tests.test_curve_model import synthetic_curves

    cfg = CurveTrainConfig(**{"hidden": 8, "epochs": 1, **bad})
    with pytest.raises(ValueError, match=next(iter(bad))):
        build_curve_model({"a": synthetic_curves(40)}, cfg)
