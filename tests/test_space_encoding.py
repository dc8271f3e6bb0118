"""Tests for the unit-interval encoding of Optuna distributions (``optuna_meta.space``)."""

from __future__ import annotations

import decimal
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna._transform import _SearchSpaceTransform
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_meta.space import SpaceEncoder, decode_value, encode_value, n_features_of

# Optuna warns when it adjusts ``high`` to the step grid; that adjustment is what we test.
pytestmark = pytest.mark.filterwarnings("ignore:The distribution is specified by")

SETTINGS = settings(max_examples=150, deadline=None)


def _quiet(factory: Any, *args: Any, **kwargs: Any) -> BaseDistribution:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return factory(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Strategies: a distribution together with a valid value of it.
# ---------------------------------------------------------------------------------------------

_decimal_floats = st.integers(-100_000, 100_000).map(lambda i: i / 100)


@st.composite
def continuous_floats(draw: st.DrawFn) -> tuple[FloatDistribution, float]:
    if draw(st.booleans()):
        low = draw(st.floats(1e-8, 1e4))
        high = low * draw(st.one_of(st.just(1.0), st.floats(1.0, 1e8)))
        dist = FloatDistribution(low, high, log=True)
    else:
        low = draw(st.floats(-1e6, 1e6))
        high = low + draw(st.one_of(st.just(0.0), st.floats(0.0, 1e6)))
        dist = FloatDistribution(low, high)
    value = draw(st.one_of(st.floats(dist.low, dist.high), st.sampled_from([dist.low, dist.high])))
    return dist, value


def grid_value(low: float, step: float, k: int) -> float:
    """The decimal grid point a person would write: ``0.1 + 3 * 0.3`` is ``1.0``."""
    return float(decimal.Decimal(str(low)) + k * decimal.Decimal(str(step)))


@st.composite
def step_floats(draw: st.DrawFn) -> tuple[FloatDistribution, int, int]:
    """A step float distribution (``high`` often off-grid, so Optuna adjusts it), a grid index
    and the number of grid points."""
    low = draw(_decimal_floats)
    step = draw(st.sampled_from([0.001, 0.01, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 7.0]))
    high = low + draw(st.floats(0.0, 200 * step))
    dist = _quiet(FloatDistribution, low, high, step=step)
    assert isinstance(dist, FloatDistribution)
    n_points = round((dist.high - dist.low) / step) + 1
    k = draw(st.integers(0, n_points - 1))
    return dist, k, n_points


@st.composite
def int_dists(draw: st.DrawFn) -> tuple[IntDistribution, int]:
    if draw(st.booleans()):
        low = draw(st.integers(1, 1000))
        dist = IntDistribution(low, low + draw(st.integers(0, 10**6)), log=True)
        value = draw(st.integers(dist.low, dist.high))
    else:
        low = draw(st.integers(-1000, 1000))
        step = draw(st.integers(1, 50))
        dist = _quiet(IntDistribution, low, low + draw(st.integers(0, 10**6)), step=step)
        assert isinstance(dist, IntDistribution)
        value = dist.low + step * draw(st.integers(0, (dist.high - dist.low) // step))
    return dist, value


_choice = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=4),
)


@st.composite
def categoricals(draw: st.DrawFn) -> tuple[CategoricalDistribution, Any]:
    choices = draw(st.lists(_choice, min_size=1, max_size=7))
    dist = CategoricalDistribution(choices)
    return dist, draw(st.sampled_from(dist.choices))


any_dist_value = st.one_of(
    continuous_floats(),
    step_floats().map(lambda t: (t[0], grid_value(t[0].low, t[0].step, t[1]))),
    int_dists(),
    categoricals(),
)


def _valid(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, IntDistribution) and type(value) is not int:
        return False
    if isinstance(dist, FloatDistribution) and type(value) is not float:
        return False
    return dist._contains(dist.to_internal_repr(value))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and b != b))


# ---------------------------------------------------------------------------------------------
# Round trips.
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(continuous_floats())
def test_continuous_float_round_trip_within_float_resolution(case: tuple) -> None:
    dist, value = case
    u = encode_value(dist, value)
    assert isinstance(u, float) and 0.0 <= u <= 1.0
    back = decode_value(dist, u)
    assert _valid(dist, back)
    assert math.isclose(back, value, rel_tol=1e-9, abs_tol=1e-12 * (dist.high - dist.low))


@pytest.mark.parametrize("log", [False, True])
def test_continuous_float_endpoints_are_exact(log: bool) -> None:
    dist = FloatDistribution(1e-3, 0.7, log=log)
    assert decode_value(dist, encode_value(dist, dist.low)) == dist.low
    assert decode_value(dist, encode_value(dist, dist.high)) == dist.high
    assert encode_value(dist, dist.low) == 0.0
    assert encode_value(dist, dist.high) == 1.0


@SETTINGS
@given(step_floats())
def test_step_float_round_trip_is_exact(case: tuple) -> None:
    dist, k, n_points = case
    value = dist.high if k == n_points - 1 else grid_value(dist.low, dist.step, k)
    u = encode_value(dist, value)
    assert u == pytest.approx((k + 0.5) / n_points)
    back = decode_value(dist, u)
    assert back == value and type(back) is float
    assert _valid(dist, back)


@SETTINGS
@given(step_floats())
def test_step_float_from_float_arithmetic_decodes_to_its_grid_point(case: tuple) -> None:
    # Optuna's samplers produce ``low + k * step`` in float arithmetic; it must land in cell k.
    dist, k, n_points = case
    value = min(dist.low + k * dist.step, dist.high)
    back = decode_value(dist, encode_value(dist, value))
    assert back == (dist.high if k == n_points - 1 else grid_value(dist.low, dist.step, k))
    assert math.isclose(back, value, rel_tol=1e-9, abs_tol=1e-9 * dist.step)


@pytest.mark.parametrize(
    ("dist", "values"),
    [
        (FloatDistribution(0.1, 1.0, step=0.3), [0.1, 0.4, 0.7, 1.0]),
        (FloatDistribution(0.0, 1.0, step=0.1), [0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 1.0]),
        (FloatDistribution(-0.3, 0.3, step=0.1), [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]),
    ],
)
def test_step_float_typed_values_round_trip_exactly(
    dist: FloatDistribution, values: list[float]
) -> None:
    for value in values:
        assert decode_value(dist, encode_value(dist, value)) == value


def test_step_float_with_adjusted_high() -> None:
    dist = _quiet(FloatDistribution, 0.1, 1.05, step=0.3)
    assert dist.high == 1.0
    assert [decode_value(dist, u) for u in (0.0, 0.3, 0.6, 1.0)] == [0.1, 0.4, 0.7, 1.0]
    assert decode_value(dist, encode_value(dist, 0.1 + 3 * 0.3)) == 1.0


@SETTINGS
@given(int_dists())
def test_int_round_trip_is_exact(case: tuple) -> None:
    dist, value = case
    u = encode_value(dist, value)
    assert 0.0 <= u <= 1.0
    back = decode_value(dist, u)
    assert back == value and type(back) is int
    # An integral float is a valid way to give an integer.
    assert decode_value(dist, encode_value(dist, float(value))) == value


@SETTINGS
@given(categoricals())
def test_categorical_round_trip_is_exact_and_type_aware(case: tuple) -> None:
    dist, value = case
    one_hot = encode_value(dist, value)
    assert isinstance(one_hot, np.ndarray) and one_hot.shape == (len(dist.choices),)
    assert one_hot.sum() == 1.0 and set(np.unique(one_hot)) <= {0.0, 1.0}
    assert _same(decode_value(dist, one_hot), value)


def test_categorical_mixed_types_keep_their_identity() -> None:
    choices = [1, True, 1.0, "1", None, False, 0, float("nan")]
    dist = CategoricalDistribution(choices)
    for choice in choices:
        one_hot = encode_value(dist, choice)
        assert _same(decode_value(dist, one_hot), choice), choice
    assert np.argmax(encode_value(dist, True)) == 1
    assert np.argmax(encode_value(dist, 0)) == 6


@pytest.mark.parametrize(
    "dist",
    [
        FloatDistribution(0.5, 0.5),
        FloatDistribution(2.0, 2.0, log=True),
        _quiet(FloatDistribution, 0.1, 0.15, step=0.3),
        IntDistribution(3, 3),
        IntDistribution(1, 1, log=True),
        _quiet(IntDistribution, 0, 4, step=5),
        CategoricalDistribution(["only"]),
    ],
    ids=repr,
)
def test_single_value_distributions(dist: BaseDistribution) -> None:
    value = dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low
    for u in (0.0, 0.3, 0.5, 1.0):
        if isinstance(dist, CategoricalDistribution):
            assert decode_value(dist, [u]) == value
        else:
            assert decode_value(dist, u) == value
    assert _same(decode_value(dist, encode_value(dist, value)), value)


@SETTINGS
@given(any_dist_value)
def test_encoding_matches_optunas_own_transform(case: tuple) -> None:
    dist, value = case
    ours = np.atleast_1d(encode_value(dist, value))
    if isinstance(dist, CategoricalDistribution):
        optuna_choice = dist.choices[int(dist.to_internal_repr(value))]
        if type(optuna_choice) is not type(value):
            # Optuna's index() confuses False with 0 and True with 1; ours is type-aware.
            assert _same(dist.choices[int(np.argmax(ours))], value)
            return
    if (
        isinstance(dist, FloatDistribution)
        and dist.log
        and dist.low != dist.high
        and math.log(dist.low) == math.log(dist.high)
    ):
        # Bounds too close for their logarithms to differ: Optuna maps every value to 0.5,
        # ours keeps the exact linear map so that the two bounds stay apart (ce6eab2).
        expected = (value - dist.low) / (dist.high - dist.low)
        np.testing.assert_allclose(ours, [expected], rtol=1e-9, atol=1e-9)
        return
    transform = _SearchSpaceTransform({"x": dist}, transform_0_1=True)
    np.testing.assert_allclose(ours, transform.transform({"x": value}), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Decoding arbitrary features.
# ---------------------------------------------------------------------------------------------

_any_u = st.one_of(st.floats(0.0, 1.0), st.floats(allow_nan=False), st.sampled_from([0.0, 1.0]))


@SETTINGS
@given(any_dist_value, st.data())
def test_decode_of_any_feature_is_valid(case: tuple, data: st.DataObject) -> None:
    dist, _ = case
    if isinstance(dist, CategoricalDistribution):
        u: Any = data.draw(
            st.lists(_any_u, min_size=len(dist.choices), max_size=len(dist.choices))
        )
    else:
        u = data.draw(_any_u)
    assert _valid(dist, decode_value(dist, u))


@SETTINGS
@given(any_dist_value, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_numeric_decode_is_monotone(case: tuple, u1: float, u2: float) -> None:
    dist, _ = case
    if isinstance(dist, CategoricalDistribution):
        return
    lo, hi = sorted((u1, u2))
    assert decode_value(dist, lo) <= decode_value(dist, hi)


def test_int_cells_have_equal_width() -> None:
    dist = IntDistribution(0, 4)  # 5 values, each owns a fifth of [0, 1]
    us = np.linspace(0.0, 1.0, 1001)
    counts = np.bincount([decode_value(dist, u) for u in us[:-1]])
    assert counts.tolist() == [200, 200, 200, 200, 200]
    assert encode_value(dist, 0) == pytest.approx(0.1)
    assert encode_value(dist, 4) == pytest.approx(0.9)


def test_step_int_decodes_onto_grid() -> None:
    dist = _quiet(IntDistribution, 2, 11, step=3)  # high -> 11 ok: 2, 5, 8, 11
    assert [decode_value(dist, u) for u in (0.0, 0.26, 0.5, 0.74, 0.99, 5.0, -3.0)] == [
        2,
        5,
        8,
        8,
        11,
        11,
        2,
    ]


def test_log_int_round_trip_at_small_values() -> None:
    dist = IntDistribution(1, 1024, log=True)
    for value in [1, 2, 3, 4, 5, 63, 64, 65, 1023, 1024]:
        assert decode_value(dist, encode_value(dist, value)) == value


def test_categorical_decode_is_argmax_and_ignores_nan() -> None:
    dist = CategoricalDistribution(["a", "b", "c"])
    assert decode_value(dist, [0.1, 0.7, 0.2]) == "b"
    assert decode_value(dist, [0.5, 0.5, 0.2]) == "a"
    assert decode_value(dist, [np.nan, 0.1, 0.3]) == "c"
    with pytest.raises(ValueError, match="inactive"):
        decode_value(dist, [np.nan] * 3)


# ---------------------------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dist", "value", "error"),
    [
        (FloatDistribution(0.0, 1.0), 1.5, ValueError),
        (FloatDistribution(0.0, 1.0), -0.1, ValueError),
        (FloatDistribution(0.0, 1.0), float("nan"), ValueError),
        (FloatDistribution(0.0, 1.0), float("inf"), ValueError),
        (FloatDistribution(0.0, 1.0), "0.5", TypeError),
        (FloatDistribution(0.0, 1.0), None, TypeError),
        (FloatDistribution(0.0, 1.0), True, TypeError),
        (FloatDistribution(1e-3, 1.0, log=True), 0.0, ValueError),
        (FloatDistribution(0.0, 1.0, step=0.25), 0.3, ValueError),
        (IntDistribution(0, 10), 2.5, ValueError),
        (IntDistribution(0, 10), 11, ValueError),
        (IntDistribution(0, 10, step=2), 3, ValueError),
        (IntDistribution(1, 10, log=True), 0, ValueError),
        (CategoricalDistribution(["a", "b"]), "c", ValueError),
        (CategoricalDistribution([1, 2]), "1", ValueError),
    ],
)
def test_encode_rejects_values_outside_the_distribution(
    dist: BaseDistribution, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        encode_value(dist, value)


class _Unknown(BaseDistribution):
    def to_internal_repr(self, param_value_in_external_repr: Any) -> float:
        return 0.0

    def single(self) -> bool:
        return True

    def _contains(self, param_value_in_internal_repr: float) -> bool:
        return True


def test_unknown_distribution_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Unsupported distribution"):
        encode_value(_Unknown(), 0.0)
    with pytest.raises(TypeError, match="Unsupported distribution"):
        decode_value(_Unknown(), 0.5)
    with pytest.raises(TypeError, match="Unsupported distribution"):
        SpaceEncoder({"x": _Unknown()})
    with pytest.raises(TypeError):
        n_features_of(_Unknown())


def test_decode_value_rejects_bad_shapes_and_nan() -> None:
    with pytest.raises(TypeError):
        decode_value(CategoricalDistribution(["a", "b"]), 0.5)
    with pytest.raises(TypeError):
        decode_value(FloatDistribution(0.0, 1.0), [0.1, 0.2])
    with pytest.raises(ValueError, match="inactive"):
        decode_value(FloatDistribution(0.0, 1.0), float("nan"))


# ---------------------------------------------------------------------------------------------
# SpaceEncoder.
# ---------------------------------------------------------------------------------------------

SPACE: dict[str, BaseDistribution] = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "booster": CategoricalDistribution(["gbtree", "dart", None]),
    "depth": IntDistribution(1, 15),
    "units": IntDistribution(16, 1024, log=True),
    "frac": FloatDistribution(0.1, 1.0, step=0.3),
    "momentum": FloatDistribution(0.0, 0.99),
}


def test_encoder_layout() -> None:
    encoder = SpaceEncoder(SPACE)
    assert encoder.n_features == 8
    assert encoder.feature_names == [
        "lr",
        "booster='gbtree'",
        "booster='dart'",
        "booster=None",
        "depth",
        "units",
        "frac",
        "momentum",
    ]
    assert encoder.feature_slices["booster"] == slice(1, 4)
    assert encoder.search_space == SPACE
    assert encoder.encode([]).shape == (0, 8)


def test_encoder_round_trip_with_inactive_parameters() -> None:
    encoder = SpaceEncoder(SPACE)
    configs = [
        {"lr": 1e-3, "booster": "dart", "depth": 7, "units": 64, "frac": 0.7, "momentum": 0.9},
        {"lr": 0.1, "booster": None, "depth": 1, "units": 1024, "frac": 1.0, "momentum": 0.0},
        {"booster": "gbtree", "depth": 15},  # conditional: the others were inactive
        {},
        {"units": 16, "not_in_space": "ignored"},
    ]
    X = encoder.encode(configs)
    assert X.shape == (5, 8)
    assert np.isnan(X[2, [0, 5, 6, 7]]).all() and not np.isnan(X[2, 1:5]).any()
    assert np.isnan(X[3]).all()
    np.testing.assert_array_equal(
        encoder.active_mask(X)[2], [False, True, True, False, False, False]
    )
    np.testing.assert_array_equal(encoder.active_mask(X)[3], [False] * 6)
    decoded = encoder.decode(X)
    for original, back in zip(configs, decoded, strict=True):
        expected = {k: v for k, v in original.items() if k in SPACE}
        assert back.keys() == expected.keys()
        for name, value in expected.items():
            if SPACE[name] == SPACE["lr"] or SPACE[name] == SPACE["momentum"]:
                assert math.isclose(back[name], value, rel_tol=1e-9, abs_tol=1e-12)
            else:
                assert _same(back[name], value), (name, back[name], value)


def test_encoder_matches_optunas_transform_on_full_configs() -> None:
    encoder = SpaceEncoder(SPACE)
    transform = _SearchSpaceTransform(SPACE, transform_0_1=True)
    config = {
        "lr": 3e-4,
        "booster": "dart",
        "depth": 4,
        "units": 100,
        "frac": 0.4,
        "momentum": 0.5,
    }
    np.testing.assert_allclose(
        encoder.encode([config])[0], transform.transform(config), atol=1e-12
    )


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=8, max_size=8))
def test_encoder_decodes_anything_to_valid_values(row: list[float]) -> None:
    encoder = SpaceEncoder(SPACE)
    (config,) = encoder.decode(np.array(row))
    for name, value in config.items():
        assert _valid(SPACE[name], value)
    for name in SPACE:
        slc = encoder.feature_slices[name]
        assert (name in config) == (not np.isnan(np.array(row)[slc]).all())


def test_encoder_errors_name_the_parameter() -> None:
    encoder = SpaceEncoder(SPACE)
    with pytest.raises(ValueError, match="'depth' of configuration 1"):
        encoder.encode([{"depth": 3}, {"depth": 99}])
    with pytest.raises(TypeError, match="'lr'"):
        encoder.encode([{"lr": "fast"}])
    with pytest.raises(ValueError, match="8 columns"):
        encoder.decode(np.zeros((2, 7)))
    with pytest.raises(TypeError, match="strings"):
        SpaceEncoder({1: FloatDistribution(0.0, 1.0)})  # type: ignore[dict-item]


def test_log_range_narrower_than_float_resolution_round_trips() -> None:
    # Found by hypothesis: log(low) == log(high) in floating point made the log map divide by 0.
    dist = FloatDistribution(9.0, 9.000000000000002, log=True)
    for x in (dist.low, dist.high):
        assert decode_value(dist, encode_value(dist, x)) == x
    assert dist.low <= decode_value(dist, 0.5) <= dist.high
