"""Tests for projecting model proposals into user distributions (``optuna_meta.space``)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_meta.space import ProjectionError, project_params, project_value

SETTINGS = settings(max_examples=150, deadline=None)


def _quiet(factory: Any, *args: Any, **kwargs: Any) -> BaseDistribution:
    """Build a distribution without Optuna's warning about adjusting ``high`` to the grid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return factory(*args, **kwargs)


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, IntDistribution) and type(value) is not int:
        return False
    if isinstance(dist, FloatDistribution) and type(value) is not float:
        return False
    return dist._contains(dist.to_internal_repr(value))


@st.composite
def numeric_dists(draw: st.DrawFn) -> BaseDistribution:
    kind = draw(st.sampled_from(["float", "log", "step", "int", "int_log", "int_step"]))
    if kind in ("log", "int_log"):
        low = draw(st.integers(1, 1000)) if kind == "int_log" else draw(st.floats(1e-6, 1e3))
        high = low + draw(st.integers(0, 10**5) if kind == "int_log" else st.floats(0.0, 1e5))
        cls = IntDistribution if kind == "int_log" else FloatDistribution
        return cls(low, high, log=True)
    if kind in ("int", "int_step"):
        low = draw(st.integers(-1000, 1000))
        step = draw(st.integers(1, 7)) if kind == "int_step" else 1
        return _quiet(IntDistribution, low, low + draw(st.integers(0, 10**4)), step=step)
    low = draw(st.integers(-10_000, 10_000)) / 100
    if kind == "step":
        step = draw(st.sampled_from([0.01, 0.1, 0.25, 0.3, 1.0, 3.0]))
        return _quiet(FloatDistribution, low, low + draw(st.floats(0.0, 100 * step)), step=step)
    return FloatDistribution(low, low + draw(st.floats(0.0, 1e4)))


_proposals = st.one_of(
    st.floats(allow_nan=False),
    st.integers(-(10**12), 10**12),
    st.booleans(),
    st.floats(-1e4, 1e4).map(repr),  # numbers written as strings
)


@SETTINGS
@given(numeric_dists(), _proposals)
def test_any_numeric_proposal_lands_inside_the_user_distribution(
    dist: BaseDistribution, value: Any
) -> None:
    assert _contains(dist, project_value(value, dist))


@SETTINGS
@given(numeric_dists(), st.data())
def test_values_already_inside_are_kept(dist: BaseDistribution, data: st.DataObject) -> None:
    if isinstance(dist, IntDistribution):
        value: Any = dist.low + dist.step * data.draw(
            st.integers(0, (dist.high - dist.low) // dist.step)
        )
        assert project_value(value, dist) == value
    elif dist.step is None:
        value = data.draw(st.floats(dist.low, dist.high))
        assert project_value(value, dist) == value
    else:
        k = data.draw(st.integers(0, round((dist.high - dist.low) / dist.step)))
        value = min(dist.low + k * dist.step, dist.high)
        assert project_value(value, dist) == pytest.approx(value, abs=1e-9 * dist.step)


@SETTINGS
@given(numeric_dists(), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_projection_is_monotone(dist: BaseDistribution, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert project_value(lo, dist) <= project_value(hi, dist)


def test_narrower_user_range_clips() -> None:
    model = FloatDistribution(1e-5, 1.0, log=True)
    user = FloatDistribution(1e-4, 1e-2, log=True)
    assert project_value(0.5, user, model) == 1e-2
    assert project_value(1e-5, user, model) == 1e-4
    assert project_value(3e-3, user, model) == 3e-3


def test_wider_user_range_keeps_the_value() -> None:
    user = FloatDistribution(0.0, 10.0)
    assert project_value(0.37, user, FloatDistribution(0.0, 1.0)) == 0.37
    assert project_value(7, IntDistribution(0, 100)) == 7


@pytest.mark.parametrize(
    ("value", "dist", "expected"),
    [
        (3.4, IntDistribution(1, 10), 3),
        (3.5, IntDistribution(1, 10), 4),  # ties go up, as Optuna's cells [x - .5, x + .5)
        (3.6, IntDistribution(1, 10), 4),
        (99.9, IntDistribution(1, 10), 10),
        (-5.0, IntDistribution(1, 10), 1),
        (45.0, IntDistribution(16, 512, log=True), 45),
        (45.4, IntDistribution(16, 512, log=True), 45),
        (4.0, IntDistribution(0, 12, step=3), 3),
        (4.6, IntDistribution(0, 12, step=3), 6),
        (13.0, IntDistribution(0, 12, step=3), 12),
        (7, FloatDistribution(0.0, 10.0), 7.0),
        (7, FloatDistribution(0.0, 5.0), 5.0),
        (0.52, FloatDistribution(0.1, 1.0, step=0.3), 0.4),
        (0.56, FloatDistribution(0.1, 1.0, step=0.3), 0.7),
        (0.95, FloatDistribution(0.1, 1.0, step=0.3), 1.0),
        (1e-9, FloatDistribution(1e-3, 1.0, log=True), 1e-3),
        (-1.0, FloatDistribution(1e-3, 1.0, log=True), 1e-3),
        (float("inf"), FloatDistribution(0.0, 2.0), 2.0),
        ("1e-3", FloatDistribution(1e-4, 1.0, log=True), 1e-3),
        (True, IntDistribution(0, 1), 1),
    ],
)
def test_numeric_projection_cases(value: Any, dist: BaseDistribution, expected: Any) -> None:
    result = project_value(value, dist)
    assert result == expected and type(result) is type(expected)
    assert _contains(dist, result)


def test_step_float_projection_lands_on_the_decimal_grid() -> None:
    dist = _quiet(FloatDistribution, 0.1, 1.05, step=0.3)  # Optuna adjusts high to 1.0
    assert [project_value(v, dist) for v in (0.0, 0.41, 0.69, 0.9999, 2.0)] == [
        0.1,
        0.4,
        0.7,
        1.0,
        1.0,
    ]


@pytest.mark.parametrize("value", [None, "fast", float("nan"), [0.1], object()])
def test_non_numbers_cannot_go_into_numeric_distributions(value: Any) -> None:
    with pytest.raises(ProjectionError):
        project_value(value, FloatDistribution(0.0, 1.0))
    with pytest.raises(ValueError):  # ProjectionError is a ValueError
        project_value(value, IntDistribution(0, 3))


@pytest.mark.parametrize(
    ("value", "choices", "expected"),
    [
        ("gbtree", ["gbtree", "dart"], "gbtree"),
        ("GBTree", ["gbtree", "dart"], "gbtree"),
        (" Dart ", ["gbtree", "dart"], "dart"),
        (True, [1, True, "true"], True),
        (1, [True, 1.0, 2], 1.0),  # numeric equality, but never bool == 1
        (True, ["false", "true"], "true"),
        ("none", ["a", None], None),
        (None, ["a", None], None),
        (45, [16, 32, 64, 128], 32),
        (48, [16, 32, 64, 128], 32),  # tie: the smaller value
        (48, [128, 64, 32, 16], 32),  # whatever the order of the choices
        (100.0, [16, 32, 64, 128], 128),
        ("100", [16, 32, 64, 128], 128),
        (0.003, ["0.001", "0.01"], "0.001"),
        (5, ["low", 3, "high", 9], 3),
    ],
)
def test_categorical_projection_cases(value: Any, choices: list[Any], expected: Any) -> None:
    dist = CategoricalDistribution(choices)
    result = project_value(value, dist)
    assert result == expected and type(result) is type(expected)
    assert _contains(dist, result)


def test_categorical_nearest_number_uses_ratios_for_log_model_dists() -> None:
    user = CategoricalDistribution([16, 64, 256])
    assert project_value(150, user) == 64  # |150 - 64| < |256 - 150|
    assert project_value(150, user, IntDistribution(16, 512, log=True)) == 256  # 150/64 > 256/150
    assert project_value(150, user, IntDistribution(16, 512)) == 64


def test_categorical_nan_choice_matches_nan() -> None:
    nan = float("nan")
    dist = CategoricalDistribution([1.0, nan])
    assert project_value(float("nan"), dist) is nan


@pytest.mark.parametrize(
    ("value", "choices"),
    [("xgboost", ["gbtree", "dart"]), (None, ["a", "b"]), (3, ["a", "b"]), (True, [1, 2])],
)
def test_categorical_without_a_match_raises_projection_error(
    value: Any, choices: list[Any]
) -> None:
    with pytest.raises(ProjectionError, match="matches none of the choices"):
        project_value(value, CategoricalDistribution(choices))


@SETTINGS
@given(
    st.lists(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3)),
        min_size=1,
        max_size=6,
    ),
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3)),
)
def test_categorical_projection_returns_a_choice_or_raises(choices: list, value: Any) -> None:
    dist = CategoricalDistribution(choices)
    try:
        result = project_value(value, dist)
    except ProjectionError:
        return
    assert any(result is c for c in dist.choices)
    assert _contains(dist, result)


def test_unknown_user_distribution_is_a_type_error() -> None:
    class Other(BaseDistribution):
        def to_internal_repr(self, param_value_in_external_repr: Any) -> float:
            return 0.0

        def single(self) -> bool:
            return True

        def _contains(self, param_value_in_internal_repr: float) -> bool:
            return True

    with pytest.raises(TypeError, match="Unsupported distribution"):
        project_value(1.0, Other())


USER_SPACE: dict[str, BaseDistribution] = {
    "optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
    "model__max_depth": IntDistribution(2, 8, step=2),
    "booster": CategoricalDistribution(["gbtree", "dart"]),
    "seed": IntDistribution(0, 10),
}


def test_project_params_with_name_mapping() -> None:
    names = {"optimizer.lr": "eta", "model__max_depth": "max_depth", "booster": "booster"}
    proposal = {"eta": 0.3, "max_depth": 5.2, "booster": "GBTREE", "unused": 1}
    assert project_params(proposal, USER_SPACE, names=names) == {
        "optimizer.lr": 1e-2,
        "model__max_depth": 6,
        "booster": "gbtree",
    }


def test_project_params_with_matching_names_and_fallback() -> None:
    proposal = {"optimizer.lr": 5e-3, "booster": "gblinear", "seed": 3}
    result = project_params(proposal, USER_SPACE)
    assert result == {"optimizer.lr": 5e-3, "seed": 3}  # booster left for the fallback sampler
    assert list(result) == ["optimizer.lr", "seed"]
    with pytest.raises(ProjectionError, match="'booster'"):
        project_params(proposal, USER_SPACE, strict=True)


def test_project_params_uses_model_space_for_categorical_distance() -> None:
    user = {"bs": CategoricalDistribution([16, 64, 256])}
    proposal = {"batch_size": 150}
    names = {"bs": "batch_size"}
    model_space = {"batch_size": IntDistribution(16, 512, log=True)}
    assert project_params(proposal, user, names=names) == {"bs": 64}
    assert project_params(proposal, user, names=names, model_space=model_space) == {"bs": 256}


def test_can_represent_tells_names_that_mean_something_else() -> None:
    from optuna_meta.space import can_represent

    lr = FloatDistribution(1e-4, 1e-1, log=True)
    booster = CategoricalDistribution(["gbtree", "gblinear", "dart"])
    assert not can_represent(CategoricalDistribution(["constant", "adaptive"]), lr)
    assert not can_represent(CategoricalDistribution([True, False]), lr)  # a switch
    assert can_represent(CategoricalDistribution([None, "0.01"]), lr)  # one numeric string
    assert can_represent(FloatDistribution(1.0, 10.0), lr)  # outside: the range rule's case
    assert can_represent(CategoricalDistribution(["hist", "dart"]), booster)
    assert not can_represent(CategoricalDistribution(["hist", "approx"]), booster)
    assert not can_represent(FloatDistribution(0.0, 1.0), booster)


def test_a_positive_proposal_of_a_log_parameter_never_lands_on_zero() -> None:
    """A learning rate (log-scaled in the model) of 0.004 on the user's grid 0, 0.05, 0.1 went
    to 0, which no proposal meant: 5 of 18 trials ran lr = 0. The smallest positive point is
    taken; a linear model parameter still rounds to the nearest point."""
    grid = FloatDistribution(0.0, 0.1, step=0.05)
    log_lr = FloatDistribution(1e-4, 1e-1, log=True)
    assert project_value(0.004, grid, log_lr) == pytest.approx(0.05)
    assert project_value(0.004, grid, FloatDistribution(0.0, 0.1)) == 0.0
    assert project_value(0.004, grid) == 0.0
    assert project_value(3, IntDistribution(0, 8, step=4), IntDistribution(1, 8, log=True)) == 4
    assert project_value(0.07, grid, log_lr) == pytest.approx(0.05)
