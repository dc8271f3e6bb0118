"""Exact, invertible encoding of Optuna distributions onto unit-interval features.

A meta-model sees every search space through the same lens: one feature in ``[0, 1]`` per
numerical parameter and one one-hot feature per categorical choice. The mapping is the one Optuna
itself uses in ``optuna._transform._SearchSpaceTransform`` with ``transform_log``,
``transform_step`` and ``transform_0_1`` all on, so features agree with what Optuna's own samplers
compute. Two properties matter beyond that and are guaranteed here:

* **Any** feature value decodes to a valid value of the distribution (within bounds, on the step
  grid, an ``int`` for integers). Values outside ``[0, 1]`` are clipped first. A model may
  therefore propose anything and still yield something Optuna accepts.
* Round trips are exact for discrete values: ``decode(encode(x)) == x`` for every integer,
  step-grid value and categorical choice. Continuous floats come back within float64 resolution
  of the range (``rel_tol=1e-9`` or ``1e-12`` of ``high - low``), which is the best a single
  float feature can carry.

Discrete cells:
    An integer or step distribution with ``K + 1`` grid points is padded by half a step on each
    side, so grid point ``k`` owns ``[k / (K + 1), (k + 1) / (K + 1))`` and encodes to the cell
    centre. Every value thus gets an equal share of the unit interval (for log integers the shares
    are equal in log space after padding by half an integer, exactly as Optuna does).

Step floats:
    Decoding returns the *decimal* grid point ``low + k * step`` computed with :mod:`decimal`, the
    same arithmetic Optuna uses to adjust ``high``. So ``0.1 + 3 * 0.3`` (which is
    ``0.9999999999999999`` in float arithmetic) decodes as ``1.0``. Any value Optuna considers on
    the grid encodes into the right cell.

Inactive parameters:
    In conditional (define-by-run) spaces a trial may lack a parameter. :class:`SpaceEncoder`
    encodes a *missing key* as ``NaN`` in all of that parameter's features and skips parameters
    whose features are all ``NaN`` when decoding. Only absence means inactive: ``None`` is a
    legitimate categorical choice, so it is never read as "missing".
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

SINGLE_VALUE_FEATURE = 0.5
"""Feature of a distribution that holds a single value: the centre, as in Optuna."""

_DECIMAL_PRECISION = 60
"""Digits for grid arithmetic: far more than the 17 significant digits a float64 can hold."""

_STEP_GRID_TOLERANCE = 1e-8
"""How far (in steps) a float may sit from a grid point and still count as on it (Optuna's own)."""

_SUPPORTED = (FloatDistribution, IntDistribution, CategoricalDistribution)


def _check_supported(dist: object) -> None:
    if not isinstance(dist, _SUPPORTED):
        raise TypeError(
            f"Unsupported distribution {dist!r} of type {type(dist).__name__}; expected a "
            "FloatDistribution, IntDistribution or CategoricalDistribution."
        )


def _as_real(dist: BaseDistribution, value: Any) -> float:
    """``value`` as a finite float, or a clear error; a ``bool`` does not count as a number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number)):
        raise TypeError(
            f"{value!r} of type {type(value).__name__} is not a number; {dist!r} needs one."
        )
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{value!r} is not a finite number, so it is not in {dist!r}.")
    return x


def _unit(x: float, low: float, high: float) -> float:
    """Affine map of ``[low, high]`` onto ``[0, 1]``, safe when ``high - low`` overflows."""
    span = high - low
    if math.isinf(span):
        return (x * 0.5 - low * 0.5) / (high * 0.5 - low * 0.5)
    return (x - low) / span


def _from_unit(u: float, low: float, high: float) -> float:
    """Inverse of :func:`_unit`; endpoints are returned exactly and the result is clipped."""
    if u <= 0.0:
        return low
    if u >= 1.0:
        return high
    span = high - low
    x = low * (1.0 - u) + high * u if math.isinf(span) else low + u * span
    return min(max(x, low), high)


def _n_grid_points(dist: FloatDistribution | IntDistribution) -> int:
    """Number of values ``K + 1`` of a step or integer distribution (``high`` is pre-adjusted)."""
    if isinstance(dist, IntDistribution):
        return (dist.high - dist.low) // dist.step + 1
    assert dist.step is not None
    with decimal.localcontext() as ctx:
        ctx.prec = _DECIMAL_PRECISION
        ratio = (decimal.Decimal(str(dist.high)) - decimal.Decimal(str(dist.low))) / (
            decimal.Decimal(str(dist.step))
        )
        return int(ratio.to_integral_value(rounding=decimal.ROUND_HALF_EVEN)) + 1


def _float_grid_value(dist: FloatDistribution, k: int, n_points: int) -> float:
    """The decimal grid point ``low + k * step``; the endpoints are the distribution's own."""
    assert dist.step is not None
    if k <= 0:
        return dist.low
    if k >= n_points - 1:
        return dist.high
    with decimal.localcontext() as ctx:
        ctx.prec = _DECIMAL_PRECISION
        value = decimal.Decimal(str(dist.low)) + k * decimal.Decimal(str(dist.step))
        return min(float(value), dist.high)


def _cell_centre(k: int, n_points: int) -> float:
    return (k + 0.5) / n_points


def _cell_index(u: float, n_points: int) -> int:
    """Grid index whose equal-width cell holds ``u`` (clipped to ``[0, 1]``)."""
    u = min(max(u, 0.0), 1.0)
    return min(math.floor(u * n_points), n_points - 1)


def _int_log_bounds(dist: IntDistribution) -> tuple[float, float]:
    """Log-space bounds padded by half an integer on each side, as in Optuna's transform."""
    return math.log(dist.low - 0.5), math.log(dist.high + 0.5)


def _categorical_index(dist: CategoricalDistribution, value: Any) -> int:
    """Index of ``value`` in ``dist.choices``, type-aware so that ``True`` and ``1`` differ.

    Optuna's ``to_internal_repr`` uses ``==`` and so maps ``True`` to a ``1`` listed before it; a
    first pass that also requires equal types keeps round trips exact for mixed-type choices.
    """
    for index, choice in enumerate(dist.choices):
        if type(choice) is type(value) and (choice == value or _both_nan(choice, value)):
            return index
    try:
        return int(dist.to_internal_repr(value))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{value!r} is not one of the choices {dist.choices!r}.") from e


def _both_nan(a: Any, b: Any) -> bool:
    return (
        isinstance(a, (Real, np.floating))
        and isinstance(b, (Real, np.floating))
        and math.isnan(float(a))
        and math.isnan(float(b))
    )


def n_features_of(dist: BaseDistribution) -> int:
    """Number of unit-interval features ``dist`` encodes to: one, or one per categorical choice."""
    _check_supported(dist)
    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices)
    return 1


def encode_value(dist: BaseDistribution, value: Any) -> float | np.ndarray:
    """Encode one value of ``dist`` into ``[0, 1]``.

    Returns:
        A float for float and integer distributions; a one-hot ``float64`` array with one entry
        per choice for categorical distributions.

    Raises:
        TypeError: ``dist`` is not a supported distribution, or a numerical ``dist`` got a
            non-number (``bool`` counts as a non-number).
        ValueError: ``value`` lies outside ``dist`` (out of bounds, off the step grid, not an
            integer for an integer distribution, or not among the choices).
    """
    _check_supported(dist)
    if isinstance(dist, CategoricalDistribution):
        one_hot = np.zeros(len(dist.choices), dtype=np.float64)
        one_hot[_categorical_index(dist, value)] = 1.0
        return one_hot

    assert isinstance(dist, (FloatDistribution, IntDistribution))
    x = _as_real(dist, value)
    if not dist.low <= x <= dist.high:
        raise ValueError(f"{value!r} is outside [{dist.low}, {dist.high}] of {dist!r}.")

    if isinstance(dist, IntDistribution):
        if x != math.floor(x):
            raise ValueError(f"{value!r} is not an integer, so it is not in {dist!r}.")
        n_points = _n_grid_points(dist)
        if dist.log:
            log_low, log_high = _int_log_bounds(dist)
            return min(max(_unit(math.log(x), log_low, log_high), 0.0), 1.0)
        # Exact integer arithmetic when the caller passed an integer (floats stop at 2**53).
        offset = (int(value) if isinstance(value, (int, np.integer)) else int(x)) - dist.low
        if offset % dist.step != 0:
            raise ValueError(f"{value!r} is not on the step grid of {dist!r}.")
        return _cell_centre(offset // dist.step, n_points)

    if dist.step is not None:
        n_points = _n_grid_points(dist)
        k_float = (x - dist.low) / dist.step
        k = round(k_float)
        if abs(k_float - k) >= _STEP_GRID_TOLERANCE:
            raise ValueError(f"{value!r} is not on the step grid of {dist!r}.")
        return _cell_centre(min(max(k, 0), n_points - 1), n_points)

    if dist.low == dist.high:
        return SINGLE_VALUE_FEATURE
    if _uses_log(dist):
        u = _unit(math.log(x), math.log(dist.low), math.log(dist.high))
    else:
        u = _unit(x, dist.low, dist.high)
    return min(max(u, 0.0), 1.0)


def decode_value(dist: BaseDistribution, u: float | Sequence[float] | np.ndarray) -> Any:
    """Decode feature(s) ``u`` into a valid value of ``dist``; inverse of :func:`encode_value`.

    Every input decodes to a value ``dist`` contains: features outside ``[0, 1]`` are clipped,
    discrete values snap to their cell, and a categorical decodes to the choice with the largest
    feature (the first one on ties; ``NaN`` entries are ignored).

    Raises:
        TypeError: ``dist`` is unsupported, or ``u`` has the wrong shape for it.
        ValueError: ``u`` is ``NaN`` (an inactive parameter has no value to decode).
    """
    _check_supported(dist)
    if isinstance(dist, CategoricalDistribution):
        scores = np.asarray(u, dtype=np.float64)
        if scores.shape != (len(dist.choices),):
            raise TypeError(
                f"A categorical with {len(dist.choices)} choices needs that many features, "
                f"got shape {scores.shape}."
            )
        if np.isnan(scores).all():
            raise ValueError("All features are NaN: the parameter is inactive.")
        return dist.choices[int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))]

    assert isinstance(dist, (FloatDistribution, IntDistribution))
    array = np.asarray(u, dtype=np.float64)
    if array.size != 1:
        raise TypeError(f"{dist!r} is encoded by one feature, got shape {array.shape}.")
    t = float(array.reshape(()))
    if math.isnan(t):
        raise ValueError("The feature is NaN: the parameter is inactive.")

    if isinstance(dist, IntDistribution):
        n_points = _n_grid_points(dist)
        if dist.log:
            log_low, log_high = _int_log_bounds(dist)
            v = math.exp(_from_unit(t, log_low, log_high))
            return min(max(math.floor(v + 0.5), dist.low), dist.high)
        return dist.low + _cell_index(t, n_points) * dist.step

    if dist.step is not None:
        n_points = _n_grid_points(dist)
        return _float_grid_value(dist, _cell_index(t, n_points), n_points)
    if t <= 0.0 or t >= 1.0:  # exact endpoints, which exp(log(x)) would not give
        return dist.low if t <= 0.0 else dist.high
    if _uses_log(dist):
        v = math.exp(_from_unit(t, math.log(dist.low), math.log(dist.high)))
        return min(max(v, dist.low), dist.high)
    return _from_unit(t, dist.low, dist.high)


def _uses_log(dist: FloatDistribution) -> bool:
    """Log scale, unless the bounds are so close that their logarithms coincide.

    ``FloatDistribution(9.0, 9.000000000000002, log=True)`` has ``log(low) == log(high)`` in
    floating point; the linear map of such a range is exact and equivalent.
    """
    return dist.log and math.log(dist.low) != math.log(dist.high)


class SpaceEncoder:
    """Encode whole parameter configurations of a search space into a feature matrix and back.

    Parameters keep the order of ``search_space``; each contributes :func:`n_features_of` columns.
    A configuration that lacks a parameter (it was inactive in a conditional space) gets ``NaN``
    in that parameter's columns, and :meth:`decode` leaves such parameters out of its result, so
    conditional structure survives a round trip. Keys that are not in the search space are ignored,
    because trials of define-by-run studies routinely carry parameters a model does not know.

    Args:
        search_space: Parameter name to Optuna distribution. The mapping is copied.

    Raises:
        TypeError: A value is not a supported distribution, or a name is not a string.
    """

    def __init__(self, search_space: Mapping[str, BaseDistribution]) -> None:
        for name, dist in search_space.items():
            if not isinstance(name, str):
                raise TypeError(f"Parameter names must be strings, got {name!r}.")
            _check_supported(dist)
        self._search_space: dict[str, BaseDistribution] = dict(search_space)
        self._slices: dict[str, slice] = {}
        start = 0
        for name, dist in self._search_space.items():
            width = n_features_of(dist)
            self._slices[name] = slice(start, start + width)
            start += width
        self._n_features = start

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """A copy of the encoded search space."""
        return dict(self._search_space)

    @property
    def n_features(self) -> int:
        """Number of columns of the feature matrix."""
        return self._n_features

    @property
    def feature_names(self) -> list[str]:
        """One name per column: ``name`` or, per categorical choice, ``name=repr(choice)``."""
        names: list[str] = []
        for name, dist in self._search_space.items():
            if isinstance(dist, CategoricalDistribution):
                names.extend(f"{name}={choice!r}" for choice in dist.choices)
            else:
                names.append(name)
        return names

    @property
    def feature_slices(self) -> dict[str, slice]:
        """Parameter name to the slice of columns that encodes it."""
        return dict(self._slices)

    def encode(self, params_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode configurations into an ``(n, n_features)`` matrix; missing parameters are NaN.

        Raises:
            TypeError, ValueError: As :func:`encode_value`, naming the offending parameter.
        """
        X = np.full((len(params_list), self._n_features), np.nan, dtype=np.float64)
        for row, params in enumerate(params_list):
            for name, dist in self._search_space.items():
                if name not in params:
                    continue
                try:
                    X[row, self._slices[name]] = encode_value(dist, params[name])
                except (TypeError, ValueError) as e:
                    raise type(e)(f"Parameter {name!r} of configuration {row}: {e}") from e
        return X

    def decode(self, X: np.ndarray | Sequence[Sequence[float]]) -> list[dict[str, Any]]:
        """Decode each row of ``X`` (or a single 1-D row) into a configuration.

        A parameter whose features are all ``NaN`` is inactive and left out of that row's dict.
        Every value returned is valid for its distribution, whatever the features were.

        Raises:
            ValueError: ``X`` does not have ``n_features`` columns.
        """
        array = np.asarray(X, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self._n_features:
            raise ValueError(
                f"Expected an array with {self._n_features} columns, got shape {array.shape}."
            )
        active = self.active_mask(array)
        configs: list[dict[str, Any]] = []
        for row in range(array.shape[0]):
            config: dict[str, Any] = {}
            for j, (name, dist) in enumerate(self._search_space.items()):
                if active[row, j]:
                    config[name] = decode_value(dist, array[row, self._slices[name]])
            configs.append(config)
        return configs

    def active_mask(self, X: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """``(n, n_params)`` booleans: whether each parameter is active (not all-NaN) per row."""
        array = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if array.shape[1] != self._n_features:
            raise ValueError(
                f"Expected an array with {self._n_features} columns, got shape {array.shape}."
            )
        mask = np.zeros((array.shape[0], len(self._search_space)), dtype=bool)
        for j, columns in enumerate(self._slices.values()):
            mask[:, j] = ~np.isnan(array[:, columns]).all(axis=1)
        return mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._search_space!r})"
