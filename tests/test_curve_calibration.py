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


# -- calibration by context size (session 29) ------------------------------------------------
def _errors_by_context(size: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Errors whose tail is heavy with few completed trials and Gaussian with many."""
    rng = np.random.default_rng(seed)
    n = rng.choice([1, 2, 3, 6, 12, 40, 120], size=size).astype(float)
    f = rng.random(size)
    z = np.where(n < 5, 2.0 * rng.normal(size=size), rng.normal(size=size))
    return z, f, n


def test_fit_by_context_size_reads_the_tail_of_each_size():
    z, f, n = _errors_by_context(200_000)
    cal = TailCalibration.fit(z, f, n=n)
    pooled = TailCalibration.fit(z, f)
    assert cal is not None and cal.n is not None and pooled is not None
    assert cal.z.shape == (len(cal.n), len(cal.f), len(TAIL_LEVELS))
    assert cal.n[0] == 1 and np.all(np.diff(cal.n) > 0)
    for frac in (0.05, 0.5, 0.95):
        assert cal.survival(2.5, frac, 1) == pytest.approx(normal_sf(1.25), rel=0.15)
        assert cal.survival(2.5, frac, 100) == pytest.approx(normal_sf(2.5), rel=0.25)
        p_pooled = pooled.survival(2.5, frac)
        assert cal.survival(2.5, frac, 100) < p_pooled < cal.survival(2.5, frac, 2)
        # between two ranges' centres: between their probabilities (log-n interpolation)
        p = [cal.survival(2.5, frac, k) for k in (2, 4, 8)]
        assert p[0] >= p[1] >= p[2]
    with pytest.raises(ValueError, match="pass n"):
        cal.survival(2.5, 0.5)
    assert pooled.survival(2.5, 0.5, 3) == pooled.survival(2.5, 0.5)  # n ignored without rows


def test_fit_by_context_size_widens_sparse_cells_and_needs_two_sizes():
    z, f, n = _errors_by_context(20_000)
    early = f < 0.04  # the first fraction range: about 800 errors over seven sizes
    assert all((early & (n == k)).sum() < 500 for k in np.unique(n))  # every early cell sparse
    cal = TailCalibration.fit(z, f, n=n)
    assert cal is not None and cal.n is not None and np.all(np.isfinite(cal.z))
    # the sparse early cells borrow their own size's later errors, not every size's
    assert cal.survival(2.5, 0.02, 1) > 2 * cal.survival(2.5, 0.02, 100)
    # one context size only: one table, as without n
    one = TailCalibration.fit(z, f, n=np.full(z.size, 7.0))
    assert one is not None and one.n is None and one.z.ndim == 2
    with pytest.raises(ValueError, match="one context size per error"):
        TailCalibration.fit(z, f, n=n[:-1])


def test_model_files_keep_a_calibration_by_context_size():
    z, f, n = _errors_by_context(100_000)
    cal = TailCalibration.fit(z, f, n=n)
    assert cal is not None and cal.n is not None
    loaded = CurveModel.from_bytes(_shipped_with(cal.arrays()).to_bytes()).calibration()
    assert loaded is not None and loaded.n is not None
    for k in (1, 5, 50):
        assert loaded.survival(2.0, 0.3, k) == pytest.approx(cal.survival(2.0, 0.3, k), rel=1e-5)
    with pytest.raises(ModelFileError, match="partial tail calibration"):
        CurveModel.from_bytes(_shipped_with({"tail_n": cal.n}).to_bytes())
    bad = _shipped_with({**cal.arrays(), "tail_n": cal.n[::-1].copy()})
    with pytest.raises(ModelFileError, match="context sizes"):
        CurveModel.from_bytes(bad.to_bytes())
    with pytest.raises(ValueError, match="inconsistent shapes"):
        TailCalibration(cal.f, cal.levels, cal.z[0], cal.n)


def test_pruner_reads_the_calibration_of_its_context_size():
    # Tables at 1 and 1000 completed trials: Gaussian errors shifted up by 3 sd at 1, plain at
    # 1000. With 12 completed trials the probability lies strictly between the two tables'.
    from statistics import NormalDist

    levels = np.array(TAIL_LEVELS)
    gauss = np.array([NormalDist().inv_cdf(p) for p in levels])
    f = np.array([0.5])

    def model(rows: list[np.ndarray], n: list[float] | None) -> CurveModel:
        z = np.array([[r] for r in rows]) if n is not None else np.array([rows[0]])
        arrays = {"tail_f": f, "tail_levels": levels, "tail_z": z}
        if n is not None:
            arrays["tail_n"] = np.array(n)
        return _shipped_with(arrays)

    p_plain = _prob(model([gauss], None))
    p_shift = _prob(model([gauss + 3.0], None))
    p_both = _prob(model([gauss + 3.0, gauss], [1.0, 1000.0]))
    assert p_plain < p_both < p_shift
    n = 12  # make_study's completed trials
    w = math.log(n) / math.log(1000.0)
    mixed = (1 - w) * (gauss + 3.0) + w * gauss
    p_mixed = _prob(model([mixed], None))
    assert p_both == pytest.approx(p_mixed, rel=1e-6)


def test_context_sizes_invert_the_context_size_input():
    from optuna_meta.curve._features import N_COUNT_REF, N_FEATURES, N_INDEX, context_sizes

    X = np.zeros((4, N_FEATURES))
    sizes = np.array([1, 2, 37, 250])
    X[:, N_INDEX] = np.log1p(sizes) / math.log1p(N_COUNT_REF)
    np.testing.assert_array_equal(context_sizes(X), sizes)
