"""When MetaSampler hands a trial to its fallback after the design: the interleaving schedule.

Why a module of its own: the schedule is a pure function of trial numbers and the study's
history, which ``benchmarks/adaptive_replay.py`` replays over stored runs, and the fallback's
per-trial seeding belongs with it.

Example:
    >>> _scheduled_turn(14, start=10, every=5, adaptive=False)
    True
    >>> _scheduled_turn(12, start=10, every=5, adaptive=False)
    False
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_meta._attrs import ATTR_SOURCE
from optuna_meta.sampler._constraints import _margin

DEFAULT_FALLBACK_EVERY = 5
"""After the design's trials, every this-many-th trial goes to the fallback (``fallback_every``).

Why: the surrogate bets that the study resembles its training tasks. When it does not, its
prior points the wrong way and its proposals can stay there: on a 4-parameter synthetic bowl
with LCBench's names, 30 trials of the surrogate alone ended far behind random search (-0.75
against -0.16). A trial of the fallback (TPE, which sees every trial) now and then searches
from the study's own results alone, and the surrogate conditions on what it finds. Chosen by
benchmark among 3 and 5 (``benchmarks/README.md``, session 15): with 5 the LCBench CV results
are level, a task with mirrored learning rates loses 0.003 regret at 20-30 trials, the bowl
ends ahead of random search (-0.13 at 30 trials), and the largest cost measured is on
constrained XGBoost studies (+0.025 regret at 20 trials; the unconstrained rbv2_xgboost CV
reaches regret 0 by trial 3 either way, so it cannot show one). While the fallback's trials
improve the study faster than the surrogate's it gets more turns (``adaptive_fallback``)."""


MIN_FALLBACK_IMPROVEMENTS = 2
"""The fallback's interleaved trials must have improved on the study's best this many times
before it may lead (``adaptive_fallback``; see :func:`_fallback_leads`).

Why: one improvement is often luck (a TPE trial next to the surrogate's best); two, at a higher
rate than the surrogate's own trials, says the surrogate's prior is costing the study. A round
number fixed before the benchmarks were run (``benchmarks/README.md``, session 17)."""


LEADING_FALLBACK_EVERY = 2
"""While the fallback leads (``adaptive_fallback``), every this-many-th trial is its own.

Why 2 and not 1: the surrogate must keep proposing to win the lead back. With 1 (the fallback
takes every trial while it leads) a study unlike the training tasks starved the surrogate of
turns just before it had learned the study: on LCBench with every parameter mirrored that cost
0.0039 regret at 100 trials (se 0.0017), where 2 is level (-0.0017, se 0.0018); on the
synthetic bowls 1 gains more (``benchmarks/README.md``, session 17)."""


def _scheduled_turn(number: int, start: int, every: int, adaptive: bool) -> bool | None:
    """Whose trial ``number`` is by the schedule alone: True the fallback's own turn (every
    ``every``-th from ``start`` on), False the surrogate's, None the fallback's only if it
    leads (:func:`_fallback_leads`; every :data:`LEADING_FALLBACK_EVERY`-th, with
    ``adaptive``)."""
    if every <= 0 or number < start:
        return False
    if number % every == every - 1:
        return True
    lead_every = LEADING_FALLBACK_EVERY
    if not adaptive or number % lead_every != lead_every - 1:
        return False
    return None


def _fallback_leads(
    trials: Sequence[FrozenTrial],
    start: int,
    direction: StudyDirection,
    min_improvements: int = MIN_FALLBACK_IMPROVEMENTS,
) -> bool:
    """Whether the fallback's trials have been improving the study faster than the surrogate's.

    Trials numbered ``start`` or more count by their ``optuna_meta:source`` attr: a trial
    *improves* when its value is better than that of every earlier-numbered trial (design
    trials included). Only completed trials with a finite value count, and in a study with
    constraints only feasible ones. The fallback leads when it has at least
    ``min_improvements`` improvements and a higher improvement rate than the surrogate, each
    rate smoothed as ``(improvements + 1) / (trials + 2)`` so that a few trials decide little.

    Why improvements and not values: they ask the question the schedule needs answered (whose
    proposals move the study forward now?) in the same units for both sources, whatever the
    objective's scale. Trial numbers, not completion times, order the study, so every worker
    of a parallel study reads the same history the same way.
    """
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    counted = []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.values is None or len(t.values) != 1:
            continue
        margin = _margin(t)
        if not math.isfinite(t.values[0]) or (margin is not None and margin > 0):
            continue
        counted.append((t.number, sign * float(t.values[0]), t.user_attrs.get(ATTR_SOURCE)))
    counted.sort(key=lambda c: c[0])
    improved = {"meta": 0, "fallback": 0}
    tried = {"meta": 0, "fallback": 0}
    best = -math.inf
    for number, value, source in counted:
        if number >= start and source in tried:
            tried[source] += 1
            if value > best and best > -math.inf:
                improved[source] += 1
        best = max(best, value)
    if improved["fallback"] < min_improvements:
        return False
    rate = {k: (improved[k] + 1) / (tried[k] + 2) for k in tried}
    return rate["fallback"] > rate["meta"]


_FALLBACK_STREAM = 1
"""Tells the default fallback's per-trial seeds apart from the surrogate's (same trial)."""


def _seed_fallback(sampler: BaseSampler, base_seed: int, number: int) -> None:
    """Seed the default ``TPESampler`` fallback's random streams for trial ``number``.

    Why: workers on one study may share a seed (the surrogate's proposals are seeded by trial
    number), but a ``TPESampler(seed=seed)`` in each of them, or in a restarted process,
    draws the same sequence: the parameters it samples repeated in trials 0/1, 2/3, ... of two
    workers taking turns. Seeded per trial, its draws depend on the trial, not the process.
    Optuna's private attributes: a version without them keeps its own streams.
    """
    seeds = np.random.SeedSequence([base_seed, number, _FALLBACK_STREAM]).generate_state(2)
    try:
        sampler._rng.rng.seed(int(seeds[0]))  # type: ignore[attr-defined]
        sampler._random_sampler._rng.rng.seed(int(seeds[1]))  # type: ignore[attr-defined]
    except AttributeError:
        pass
