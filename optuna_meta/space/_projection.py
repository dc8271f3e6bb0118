"""Projection of a meta-model's proposals into the user's own distributions.

A meta-model proposes values in *its* space (say ``eta`` as a float in ``[1e-3, 1]``), but the
trial must receive a value the *user's* distribution contains (say ``lr`` as a float in
``[1e-4, 1e-2]`` with ``log=True``, or a categorical ``[1e-3, 1e-2]``). The rules, in order of
preference, always give a value the user's distribution contains or fail loudly:

Numerical user distributions (float or int, any of log / step):
    The proposal is clipped to ``[low, high]`` and then snapped to the nearest grid point
    (``step``) or integer. Ranges narrower or wider than the model's are both fine, and so are
    float proposals into integer distributions and vice versa. Clipping and rounding are monotone,
    so doing them in log space would change nothing but the tie rule; rounding is done in linear
    space with ties going up, which gives each integer of a log-integer distribution the same cell
    ``[x - 0.5, x + 0.5)`` that Optuna's own transform (and :mod:`._encoding`) gives it. Numbers
    written as strings (``"1e-3"``) and booleans (as 0 / 1) are accepted.

Categorical user distributions:
    1. The identical choice (type-aware, so ``True`` never matches a ``1``).
    2. A case-insensitive text match (``"GBTree"`` -> ``"gbtree"``, ``True`` -> ``"true"``,
       ``"none"`` -> ``None``).
    3. For numeric proposals (booleans excluded), the nearest numeric choice (choices that are
       numbers or numeric strings), by absolute difference, or by ratio when the model's
       distribution is log-scaled and everything is positive. Ties go to the smaller value
       (never to the order of the choices).
    4. Otherwise :class:`ProjectionError` is raised, so the caller can fall back (for instance to
       its independent sampler). ``None`` is never returned as a failure signal because ``None``
       is a legitimate categorical choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_meta.space._encoding import _float_grid_value, _n_grid_points


class ProjectionError(ValueError):
    """A proposal has no sensible counterpart in the user's distribution."""


def _as_number(value: Any) -> float | None:
    """``value`` as a non-NaN float if it is a number, a boolean or a numeric string, else None."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (Real, np.number)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def _choice_number(choice: Any) -> float | None:
    """A categorical choice read as a number; booleans are not numbers among choices."""
    if isinstance(choice, (bool, np.bool_)):
        return None
    return _as_number(choice)


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_nan(value: Any) -> bool:
    return isinstance(value, (Real, np.number)) and not _is_bool(value) and math.isnan(value)


def _same_choice(value: Any, choice: Any) -> bool:
    """Equality that keeps booleans apart from numbers and treats NaN as equal to NaN."""
    if _is_bool(value) != _is_bool(choice):
        return False
    if _is_nan(value) or _is_nan(choice):
        return _is_nan(value) and _is_nan(choice)
    try:
        return bool(value == choice)
    except (TypeError, ValueError):  # e.g. objects whose == returns an array
        return False


def _text(value: Any) -> str:
    return str(value).strip().casefold()


def _is_log(dist: BaseDistribution | None) -> bool:
    return isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log


def _project_numeric(x: float, dist: FloatDistribution | IntDistribution) -> int | float:
    x = min(max(x, float(dist.low)), float(dist.high))
    if isinstance(dist, IntDistribution):
        k = math.floor((x - dist.low) / dist.step + 0.5)
        k = min(max(k, 0), _n_grid_points(dist) - 1)
        return dist.low + k * dist.step
    if dist.step is None:
        return x
    n_points = _n_grid_points(dist)
    k = min(max(math.floor((x - dist.low) / dist.step + 0.5), 0), n_points - 1)
    return _float_grid_value(dist, k, n_points)


def _project_categorical(
    value: Any, dist: CategoricalDistribution, model_dist: BaseDistribution | None
) -> Any:
    for choice in dist.choices:
        if type(choice) is type(value) and _same_choice(value, choice):
            return choice
    for choice in dist.choices:
        if _same_choice(value, choice):
            return choice
    text = _text(value)
    for choice in dist.choices:
        if _text(choice) == text:
            return choice

    x = None if _is_bool(value) else _as_number(value)  # True is not "the number nearest 1"
    numeric = [(c, n) for c in dist.choices if (n := _choice_number(c)) is not None]
    if x is None or not numeric:
        raise ProjectionError(f"{value!r} matches none of the choices {dist.choices!r}.")
    target: float = x
    use_ratio = _is_log(model_dist) and target > 0 and all(n > 0 for _, n in numeric)

    def distance(n: float) -> float:
        return abs(math.log(n) - math.log(target)) if use_ratio else abs(n - target)

    # A tie (16 halfway between 8 and 32 on a log scale) goes to the smaller value, not to the
    # choice listed first: the order of `choices` must not change the proposal.
    best_choice, _ = min(numeric, key=lambda pair: (distance(pair[1]), pair[1]))
    return best_choice


def project_value(
    value: Any, user_dist: BaseDistribution, model_dist: BaseDistribution | None = None
) -> Any:
    """Turn a proposal ``value`` into a value ``user_dist`` contains.

    Args:
        value: The proposal, in the external representation of the model's space.
        user_dist: The user's distribution for the same hyperparameter.
        model_dist: The model's distribution, if known. It only changes how the nearest numeric
            categorical choice is measured (by ratio when it is log-scaled).

    Returns:
        A value ``v`` with ``user_dist._contains(user_dist.to_internal_repr(v))``: an ``int`` for
        integer distributions, a ``float`` for float ones, one of the choices for categoricals.

    Raises:
        ProjectionError: No rule applies (a non-numeric proposal for a numerical distribution,
            or a proposal matching no categorical choice). Subclasses :class:`ValueError`.
        TypeError: ``user_dist`` is not a supported distribution.
    """
    if isinstance(user_dist, CategoricalDistribution):
        return _project_categorical(value, user_dist, model_dist)
    if isinstance(user_dist, (FloatDistribution, IntDistribution)):
        x = _as_number(value)
        if x is None:
            raise ProjectionError(
                f"{value!r} is not a number, so it cannot go into {user_dist!r}."
            )
        out = _project_numeric(x, user_dist)
        if out <= 0 < x and _is_log(model_dist) and user_dist.step is not None:
            # A log-scaled model parameter is never 0: a learning rate of 0.004 on the grid
            # 0, 0.05, 0.1 went to 0, which no proposal meant (5 of 18 trials ran lr = 0).
            # The grid's smallest positive point, if it has one.
            k = math.floor(-user_dist.low / user_dist.step) + 1
            positive = user_dist.low + k * user_dist.step
            if positive <= user_dist.high:
                out = _project_numeric(positive, user_dist)
        return out
    raise TypeError(
        f"Unsupported distribution {user_dist!r} of type {type(user_dist).__name__}; expected a "
        "FloatDistribution, IntDistribution or CategoricalDistribution."
    )


GRID_TOLERANCE = 1e-9
"""How far (in steps) two step grids' origins may differ and still count as one grid."""


def grids_align(
    a: FloatDistribution | IntDistribution, b: FloatDistribution | IntDistribution
) -> bool:
    """Whether ``a`` and ``b`` have the same ``step`` and one grid holds both their points
    (``32, 64, ...`` and ``0, 32, ...`` do; ``16, 48, ...`` does not): merging them keeps the
    step. False without a step."""
    if a.step is None or a.step != b.step:
        return False
    offset = (a.low - b.low) / a.step
    return abs(offset - round(offset)) <= GRID_TOLERANCE


def can_represent(user_dist: BaseDistribution, model_dist: BaseDistribution) -> bool:
    """Whether any value of ``user_dist`` has a counterpart in ``model_dist``.

    Why: a name can match a model's parameter while meaning something else. scikit-learn's
    ``learning_rate`` is a schedule (``"constant"``, ``"invscaling"``, ``"adaptive"``), not the
    model's float learning rate, and a ``momentum`` of ``[True, False]`` is a switch: such a
    parameter must stay the fallback's, and must not take the model's name from a parameter
    that is one (``learning_rate_init``). Numeric choices (numbers, numeric strings; not
    booleans) fit a numeric model parameter; a categorical model parameter needs a choice it
    matches.

    Example:
        >>> from optuna.distributions import CategoricalDistribution, FloatDistribution
        >>> lr = FloatDistribution(1e-4, 1e-1, log=True)
        >>> can_represent(CategoricalDistribution(["constant", "adaptive"]), lr)
        False
        >>> can_represent(CategoricalDistribution([1e-3, 1e-2]), lr)
        True
    """
    if isinstance(model_dist, CategoricalDistribution):
        values = getattr(user_dist, "choices", None)
        if values is None:
            values = (getattr(user_dist, "low", None), getattr(user_dist, "high", None))
        for value in values:
            try:
                _project_categorical(value, model_dist, None)
                return True
            except ProjectionError:
                continue
        return False
    if isinstance(user_dist, CategoricalDistribution):
        return any(_choice_number(c) is not None for c in user_dist.choices)
    return True


def project_params(
    proposal: Mapping[str, Any],
    user_space: Mapping[str, BaseDistribution],
    *,
    names: Mapping[str, str] | None = None,
    model_space: Mapping[str, BaseDistribution] | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Project a whole proposal into the user's search space.

    Args:
        proposal: Parameter name to proposed value. Keys are model names when ``names`` is
            given, else user names.
        user_space: The user's parameter names and distributions.
        names: User name to model name, as returned by :func:`~optuna_meta.space.map_names`.
            User parameters absent from it are left out. ``None`` means the names already agree.
        model_space: The model's distributions, keyed like ``proposal``; optional, see
            :func:`project_value`.
        strict: Raise :class:`ProjectionError` when a value cannot be projected, instead of
            leaving that parameter out so that the caller can sample it another way.

    Returns:
        User name to projected value, in ``user_space`` order, for every user parameter that has
        a proposal (and, unless ``strict``, a projection).
    """
    projected: dict[str, Any] = {}
    for user_name, dist in user_space.items():
        key = user_name if names is None else names.get(user_name)
        if key is None or key not in proposal:
            continue
        model_dist = None if model_space is None else model_space.get(key)
        try:
            projected[user_name] = project_value(proposal[key], dist, model_dist)
        except ProjectionError as e:
            if strict:
                raise ProjectionError(f"Parameter {user_name!r}: {e}") from e
    return projected
