"""What MetaSampler reads of a study's trials: the values a trial already holds, the names
finished trials tell, and the keys that spot repeated configurations.

Why a module of its own: these helpers read Optuna's trial objects (and two of Optuna's own
conventions: the ``fixed_params`` system attr of ``enqueue_trial``, ``PartialFixedSampler``'s
fixed values); keeping them apart keeps that coupling in one place.

Example:
    >>> from optuna.distributions import IntDistribution
    >>> _pinned_distribution(IntDistribution(1, 10), 3)
    IntDistribution(high=3, log=False, low=3, step=1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import PartialFixedSampler
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna.study import Study

    from optuna_meta.sampler._sampler import MetaSampler


_ACTIVE = (TrialState.RUNNING, TrialState.WAITING)
"""States of a trial that has not finished (another worker's, when it is not ours)."""


_OPTUNA_FIXED_PARAMS = "fixed_params"
"""Optuna's system attr of the values ``study.enqueue_trial`` gives a trial (user's names)."""


def _finished_names(
    trials: Sequence[FrozenTrial], trial: FrozenTrial
) -> dict[str, BaseDistribution]:
    """The parameters of the finished trials other than ``trial`` (the latest distribution).

    A trial still running (this one, or another worker's) may have suggested only some of
    its parameters so far: judging a study by those would misjudge it.
    """
    names: dict[str, BaseDistribution] = {}
    for t in reversed(trials):
        if t._trial_id != trial._trial_id and t.state.is_finished():
            for k, d in t.distributions.items():
                names.setdefault(k, d)
    return names


def _trial_key(study: Study, trial: FrozenTrial) -> tuple[int, int]:
    """A trial's key in the proposal cache: ids are unique only within one storage."""
    return (id(study._storage), trial._trial_id)


def _wrapper_fixed_params(study: Study, sampler: MetaSampler) -> dict[str, Any]:
    """The parameters a ``PartialFixedSampler`` wrapping ``sampler`` fixes (else none)."""
    try:
        outer = study.sampler
    except AttributeError:  # a restricted study object without its sampler
        return {}
    if isinstance(outer, PartialFixedSampler) and getattr(outer, "_base_sampler", None) is sampler:
        fixed = getattr(outer, "_fixed_params", None)
        return dict(fixed) if isinstance(fixed, Mapping) else {}
    return {}


def _all_enqueued(trial: FrozenTrial) -> bool:
    """Whether every parameter of ``trial`` was fixed by ``enqueue_trial`` (no sampler's)."""
    fixed = trial.system_attrs.get(_OPTUNA_FIXED_PARAMS)
    return isinstance(fixed, Mapping) and all(k in fixed for k in trial.params)


def _decided_params(trial: FrozenTrial) -> dict[str, Any]:
    """The values ``trial`` holds before the surrogate proposes (user's names, external
    representation): those ``study.enqueue_trial`` stored in its ``fixed_params`` system attr,
    and the parameters it already has: suggested earlier in the trial (a fallback's relative
    sample at the start of a trial on a new branch, :meth:`MetaSampler._new_branch`; a known
    name sent to the fallback before the study's kind was clear), or taken over from a failed
    trial by ``RetryFailedTrialCallback`` (created with them, so Optuna returns them to each
    ``suggest_*``).

    Why: a partial enqueue (``{"learning_rate": 0.003}`` before each trial) leaves the other
    parameters to the sampler, but a proposal made as if the surrogate chose all of them
    describes a configuration the trial never runs: the design's pick by expected improvement
    took one entry again and again (its own learning rate was never tried, so no check saw a
    repeat: 8 identical trials in 15), and the recorded prediction was of the entry. A foreign
    ``fixed_params`` attr that is not a mapping is ignored.
    """
    out: dict[str, Any] = dict(trial.params)
    fixed = trial.system_attrs.get(_OPTUNA_FIXED_PARAMS)
    if isinstance(fixed, Mapping):
        out.update((k, v) for k, v in fixed.items() if isinstance(k, str))
    return out


def _pinned_space(
    trial: FrozenTrial, space: Mapping[str, BaseDistribution]
) -> dict[str, BaseDistribution]:
    """Single-valued distributions at ``trial``'s decided values (:func:`_decided_params`),
    for the names of ``space`` (the study's current distributions) that have one.

    A name that ``space`` lacks (asked by no trial yet, so its kind is unknown) or whose value
    cannot form a distribution of its kind is left as it is.
    """
    out: dict[str, BaseDistribution] = {}
    for name, value in _decided_params(trial).items():
        dist = space.get(name)
        pinned = None if dist is None else _pinned_distribution(dist, value)
        if pinned is not None:
            out[name] = pinned
    return out


def _pinned_distribution(dist: BaseDistribution, value: Any) -> BaseDistribution | None:
    """A distribution of ``dist``'s kind that holds ``value`` alone, or None if none can.

    Why: a single-valued distribution goes through the sampler's machinery as any other: the
    search box pins that dimension at the value (design entries are clipped into it, the
    surrogate proposes inside it), the duplicate checks project onto it, and the predicted
    mean is the one of the configuration the trial runs. The value is the one Optuna records
    (``dist``'s round trip through its internal representation: an int for an integer
    distribution, the matching choice for a categorical), and it may lie outside ``dist``'s
    range (Optuna runs it with a warning); outside the model's range the box takes the
    nearest value inside, as for a trial that ran there. None when Optuna's representation or
    constructor refuses the value (a choice ``dist`` lacks, a non-number, zero for a log scale)
    or it is not finite.
    """
    try:
        recorded = dist.to_external_repr(dist.to_internal_repr(value))
        if isinstance(dist, CategoricalDistribution):
            return CategoricalDistribution([recorded])
        if isinstance(dist, (FloatDistribution, IntDistribution)) and math.isfinite(recorded):
            if isinstance(dist, IntDistribution):
                return IntDistribution(recorded, recorded, log=dist.log, step=dist.step)
            return FloatDistribution(recorded, recorded, log=dist.log, step=dist.step)
    except (ValueError, TypeError, OverflowError):
        pass
    return None


def _param_key(
    params: Mapping[str, Any], space: Mapping[str, BaseDistribution]
) -> tuple[tuple[str, Any], ...]:
    """A hashable key of the model-served part of a configuration (floats rounded)."""
    key = []
    for name in sorted(space):
        v = params.get(name)
        if isinstance(v, float):
            v = float(f"{v:.10g}")
        key.append((name, v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)))
    return tuple(key)
