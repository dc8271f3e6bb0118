"""MetaPruner: stop trials whose predicted final value is unlikely to be among the best.

Why: Optuna's pruners compare a trial with the others *at the same step* (median, percentile,
successive halving). Learning curves cross: a trial with a small learning rate starts slowly and
ends best, so "worse than the median now" often prunes the eventual winner; and the rules know
nothing about how much a curve still improves. MetaPruner instead asks a model, meta-trained on
thousands of learning curves of many tasks (LCBench), for the distribution of the trial's FINAL
value given its partial curve, and prunes when the probability that it enters the study's top
``top_k`` completed trials is small. The model reads the study's own completed trials as context
(what a good curve looks like in this study, how much curves still gain after this point, which
completed curves looked like this one, and how reliably their early values foretold their
finals), so it works in the user's units without configuration.

Decision at each ``trial.should_prune()`` (``prune``):

1. The latest reported value is NaN or infinite: prune (``prune_non_finite=True``, the
   default), whatever the warm-up and even with no completed trial: a diverged run does not
   recover and every further step is wasted. Earlier non-finite reports are ignored.
2. No completed trial that reported intermediate values: never prune (nothing to compare with).
3. Otherwise predict the final value (recorded in the trial's user attrs, see below), then
   prune only when all of these hold: at least ``n_startup_trials`` completed trials;
   ``step >= n_warmup_steps``; ``step / T >= min_fraction``; and
   ``P(final better than the k-th best completed final + margin) < threshold * min(1, n /
   n_ramp_trials)`` (completed trials that break the study's constraints,
   ``trial.set_constraint``, are not among those finals, as ``study.best_trial`` ignores
   them; while none is feasible nothing is pruned) with
   ``k = max(1, min(top_k, ceil(n / 2) - median_offset))`` for ``n`` completed trials:
   while fewer than ``2 * (top_k + median_offset)`` have completed, the target is
   ``median_offset`` ranks better than their median, so a trial must be likely to reach the
   better part of them (a fractional ``top_k`` gives ``k = ceil(top_k * n)``). By default the
   offset follows the sampler: 2 (the best completed trial until 6 have completed) with
   samplers that do not adapt to results (random, quasi-random, grid), 0 (the median) with
   TPE, MetaSampler and any other sampler (see "The offset" below). The ramp: with few
   completed curves as context the model cannot yet tell a slow starter from a bad trial
   well, so the first checks stop only trials it is very sure about (one completed trial:
   ``threshold / 5``), instead of waiting for five completions. A trial whose latest
   report dropped more than ``SPIKE_SCALES`` study scales below its own best report, within
   ``SPIKE_WINDOW`` of ``T`` after it, is also judged as it stood at that best, and the
   larger probability counts: a loss spike that recovers (large learning rates, a warm
   restart) pruned its trial at the spike (session 34, ``benchmarks/curve_families.py``).
4. The starvation guard (session 28; with samplers that learn from completed trials): once
   the trials pruned since the study's latest completion (numbered between it and this trial)
   recorded probabilities of improvement that add up to ``max_expected_misses`` (1: by the
   model's own account, one of them would have beaten the target), trials are not pruned on
   probability until one completes. The target and the context move only when a trial
   completes; without the guard, a study whose few completed trials hold a result new trials
   rarely approach could prune every new trial at its first check, from then on, and its
   sampler learned nothing more (see "The starvation guard" below).
5. A prediction that fails never fails the user's trial: a curve model file that cannot be
   loaded (missing, foreign, corrupt) logs one warning and disables pruning in this process,
   as MetaSampler falls back to its fallback sampler; any other error logs a warning and the
   check does not prune. :meth:`MetaPruner.predict` raises them instead.

``T``, the final step, is ``max_resource`` when given, else the largest last step of the
completed trials; so ``step`` can be an epoch, a global step of a Hugging Face ``Trainer``
(500, 1000, ...) or anything increasing, and reports may be uneven or few. A trial that has
reached ``T``, or the largest last step of the completed trials (epochs ``0..n-1`` with
``max_resource=n``), is not pruned: stopping it saves nothing. Reports beyond
``MAX_RESOURCE_SLACK * max_resource`` warn once (``max_resource`` in other units than the
steps). A completed trial whose first report comes after the checked trial's step (it
reported only at the end, or less often) lends its final to the context but not its curve,
which before its first report would only repeat that report; with no completed curve begun
by then there is no prediction.

User attrs set at every check with a prediction (with ``record_predictions=False``, only at
the check that prunes; the Optuna dashboard shows them; MetaSampler reads
``optuna_meta:predicted_final`` of pruned trials as their value):

* ``optuna_meta:predicted_final``: the predicted final value (median of the predictive
  distribution), in the user's units;
* ``optuna_meta:predicted_final_std``: the predictive standard deviation, in the user's units;
* ``optuna_meta:prob_improvement``: the probability used by the rule (0.0 for a non-finite
  report).

Once a trial reports the final step (``max_resource``, else the completed trials' largest last
step) its final is known: the first two are that report and 0, the probability 1.0 or 0.0
(whether it beats the target).

A trial pruned for a NaN or infinite report gets ``null`` (``None``) in the first two: the
prediction made before it diverged no longer holds. Code that reads them should expect it.

The probability is read from the curve model's *tail calibration* when the model has one (the
shipped one does; ``calibrated=False`` uses the network's Gaussian): meta-training measures the
network's standardised errors on tasks held out of its training and stores their quantiles by
curve fraction (:mod:`optuna_meta.curve._calibration`). On unseen tasks the Gaussian tail is
too light early in the curve: with contexts and queries of random configurations, 2.8 % / 4.0 %
/ 3.7 % of the finals land above ``mean + 2.054 sd`` (nominally 2 %) after 1-2 / 3-8 / 9-26 of
52 epochs; with the calibration 2.6 % / 2.8 % / 2.6 % of them get a probability below 2 %
(``python -m benchmarks.curve_tails``, 5-fold task CV, session 7). So ``threshold`` means what
it says. Rerun in session 28 with the current fold models: 1.9 % / 3.6 % / 3.6 % above the
Gaussian's line and 1.6 % / 2.4 % / 2.4 % calibrated below 2 %; with contexts and queries
from each task's best 80 configurations 3.5 % after 3-8 epochs (Gaussian 4.9 %), so the
calibration is over-confident there, and with few completed trials
(``python -m benchmarks.curve_tails --contexts 2,3,5,10,40 --seed 3``: 8.7 % of finals get a
probability below 0.03 after 1-3 epochs with 2 completed trials, 3.6 % with 5), which the
threshold ramp partly offsets.

Defaults (``threshold=0.03``, ``top_k=10``) were chosen on the LCBench pruner protocol
(``benchmarks/pruning.py``; 34 tasks, seed 0, 5200 epochs, curve model of each task's CV fold
never trained on it; mean normalised regret of the best completed trial at 5200 epochs). The
first version waited for ``top_k`` completed trials before pruning; the columns below were
measured with that rule:

===========  ==========  ==========  ==========  ==========  ==========  ==============
sampler      no pruning  top_k=1     top_k=5     top_k=10    top_k=20    top_k=0.2
===========  ==========  ==========  ==========  ==========  ==========  ==============
TPE          0.0924      0.0883 [1]  0.1016      0.0866      0.0856      0.1013 [2]
Random       0.1056      0.0669      0.0739      0.0792      (not run)   (not run)
MetaSampler  0.0074      (not run)   (not run)   0.0049      (not run)   (not run)
===========  ==========  ==========  ==========  ==========  ==========  ==============

[1] 10 of the 34 runs (no pruning on the same runs: 0.0630). [2] 16 runs (no pruning: 0.0744).

A small ``top_k`` prunes more, which helps random search most (``top_k=1``: 3.4x median
speed-up) but hurts TPE: TPE proposes configurations close to its best ones, so the pruner must
separate near-equal curves early and loses some winners, and TPE then learns from fewer
completed trials. ``top_k=10`` was the best compromise with TPE (``top_k=20``: about the same
final regret, lower speed-up: 1.03x vs 1.10x); a fraction of the completed trials
(``top_k=0.2``) prunes earlier in the study and was worse. With MetaSampler, which reads a
pruned trial's predicted final value, ``top_k=10`` lowered the final regret by a third on seed
0, but over seeds 0-2 the first rule ended level with no pruning (0.0062 vs 0.0061) and the
current rule lower (0.0053; worse at 520 epochs: 0.0515 vs 0.0498).
The second rule pruned from ``n_startup_trials`` completions on (target: the worst completed
trial until ``top_k`` had completed); with TPE (seed 0) it was as good or better at every
budget: regret 0.2386 / 0.1607 / 0.1026 / 0.0863 at 520 / 1040 / 2600 / 5200 epochs vs
0.2408 / 0.1610 / 0.1026 / 0.0866 with the first rule and 0.2408 / 0.1655 / 0.1089 / 0.0924
without pruning; median speed-up 1.14x vs 1.10x.

``threshold`` 0.02 replaced 0.05 (seeds 0-2, 102 runs each, regret at 520 / 1040 / 2600 /
5200 epochs): with TPE 0.1595 / 0.1093 / 0.0622 / 0.0476 vs 0.1594 / 0.1093 / 0.0611 / 0.0499
(no pruning 0.1601 / 0.1112 / 0.0677 / 0.0526; 78 vs 75 runs reach the no-pruning final);
with MetaSampler 0.0060 / 0.0025 / 0.0008 / 0.0004 vs 0.0059 / 0.0026 / 0.0008 / 0.0007 (no
pruning 0.0060 / 0.0027 / 0.0011 / 0.0004), so it is at or below no pruning at every budget
with both samplers. ``min_fraction=0`` and ``n_warmup_steps=0`` were not tuned on the full
protocol (a 3-task pilot with a preliminary model only). ``n_startup_trials=2`` instead of 5
(session 7, current rule, seeds 0-2) helps random search a lot early (seed 0: 0.1720 / 0.1334
/ 0.0883 / 0.0772 against 0.2338 / 0.1490 / 0.1017 / 0.0772) and TPE early (0.1320 / 0.0971
against 0.1450 / 0.1022 at 520 / 1040 epochs), but TPE then ends *behind* no pruning (0.0645 /
0.0538 against 0.0607 / 0.0493 at 2600 / 5200; no pruning 0.0526; over seeds 0-5 in session
8: 0.0583 against 0.0515, no pruning 0.0544), so the default stayed 5 until session 9.

The threshold ramp (session 9) replaced waiting for 5 completed trials: pruning starts at the
first completion (``n_startup_trials=1``) with ``threshold * n / 5`` for ``n < 5`` completed
trials (``n_ramp_trials=5``). Without the ramp, pruning from the first completion wins early
and loses late with TPE (0.1287 / 0.0929 / 0.0640 / 0.0530): with one or two completed curves
as context the model stops some slow starters that would have won, and TPE, which ranks pruned
trials below completed ones, then avoids their region. With the ramp only near-certain losers
stop early. Seeds 0-2, regret at 520 / 1040 / 2600 / 5200 epochs, ramp against the session-8
default (``n_startup_trials=5``, no ramp):

* TPE: 0.1264 / 0.0895 / 0.0568 / 0.0452 against 0.1450 / 0.1022 / 0.0607 / 0.0493 (paired
  -0.0186 (se 0.0046) / -0.0127 (0.0025) / -0.0040 (0.0026) / -0.0041 (0.0029)); median
  speed-up 1.30x against 1.24x, 87 against 84 of 102 runs reach the no-pruning final.
* Random: 0.1345 / 0.1074 / 0.0831 / 0.0719 against 0.1565 / 0.1183 / 0.0915 / 0.0736;
  2.06x against 1.61x (both with the median target; the offset below improved it again).
* MetaSampler: 0.0020 / 0.0015 / 0.0007 / 0.0002 against 0.0022 / 0.0011 / 0.0006 / 0.0005
  (no pruning 0.0034 / 0.0011 / 0.0005 / 0.0004): noise-level differences (paired se
  0.0002-0.0004). With MetaSampler's design in EI order (session 10) the ramp gets 0.0022 /
  0.0015 / 0.0010 / 0.0004 (no pruning 0.0034 / 0.0015 / 0.0007 / 0.0004).

A ramp over 3 or 10 trials, or 2 startup trials with the ramp, was level or behind with TPE
(``benchmarks/README.md``).

The offset (session 11): ``median_offset=k`` moves the early target ``k`` ranks above the
median of the completed trials. Regret at 520 / 1040 / 2600 / 5200 epochs, paired against
``median_offset=0`` (se):

* TPE, nine seeds (306 runs): ``k=2`` gets 0.1360 / 0.0972 / 0.0723 / 0.0603 against 0.1497 /
  0.1049 / 0.0682 / 0.0540: -0.0137 (0.0024) / -0.0077 (0.0024) / +0.0041 (0.0028) / +0.0063
  (0.0029), behind no pruning (0.0565) at the end; ``k=1``: -0.0116 / -0.0035 / +0.0017 /
  +0.0034 (0.0024). Ahead of WilcoxonPruner at every budget, which ``k=0`` is not at 520
  epochs, but worse late, so 0 stays TPE's default.
* TPE with ``k=2`` and ``n_ramp_trials=10``: over the same nine seeds 0.1406 / 0.0972 /
  0.0652 / 0.0543, -0.0092 (0.0020) / -0.0077 (0.0024) / -0.0030 (0.0025) / +0.0003
  (0.0027), and ahead of Wilcoxon and no pruning at every budget, so it was made the default
  for a while. A check on three fresh seeds (9-11) then gave -0.0002 / -0.0060 / +0.0048 /
  +0.0100 (0.0065); over the twelve seeds it is +0.0027 (0.0026) at 5200 epochs and behind no
  pruning there (+0.0013, se 0.0027; ``k=0`` with the ramp over 5: -0.0014, se 0.0020), and
  it ends worse than no pruning in more runs (142 of 408 against 84). Not the default: a
  pruner must not make the final result worse. ``MetaPruner(median_offset=2,
  n_ramp_trials=10)`` is better in the first ~1000 epochs with TPE (-0.0069 / -0.0072 over the
  twelve seeds), for small budgets.
* Measured again in session 30, with the early-rank curve model and the starvation guard
  (twelve seeds, 408 runs): -0.0071 (0.0019) / -0.0076 (0.0022) / -0.0020 (0.0024) / +0.0006
  (0.0027) against the default, ahead of WilcoxonPruner at every budget (-0.0041, se 0.0030,
  at 520 epochs, where the default is +0.0030), level with no pruning at the end (+0.0005, se
  0.0027), but worse than no pruning at 5200 epochs in 150 runs of 408 (the default: 97), and
  by more in the worst runs. The guard does not remove that risk, so the default stays. With
  MetaSampler (seeds 0-2) it is level or ahead: 0.0027 / 0.0016 / 0.0006 / 0.0000 against
  0.0026 / 0.0022 / 0.0006 / 0.0003.
* Random, seeds 0-2: ``k=2`` gets 0.1233 / 0.0987 / 0.0777 / 0.0650 against 0.1345 / 0.1074 /
  0.0831 / 0.0719: -0.0112 (0.0041) / -0.0086 (0.0023) / -0.0054 (0.0023) / -0.0069 (0.0030);
  median speed-up 2.54x against 2.06x. Seeds 3-5, run afterwards to check: -0.0113 / -0.0193
  / -0.0154 / -0.0046 (se 0.0020-0.0037).
* MetaSampler, seeds 0-5: +0.0001 / -0.0001 / -0.0002 / -0.0001 (se 0.0001-0.0002): level,
  so 0 stays its default.

Other ways to stop more early (a threshold falling with the curve fraction, a rank
``ceil(n / 3)`` or ``ceil(n / 4)``, the best completed trial until 4 have completed) did no
better with TPE (``benchmarks/README.md``).

The median cap (session 6) replaced the second rule's "worst completed trial" target, which
stopped almost nothing before ``top_k`` trials had completed (seeds 0-2, 102 runs each, regret
at 520 / 1040 / 2600 / 5200 epochs): with TPE 0.1451 / 0.1035 / 0.0610 / 0.0490 vs 0.1595 /
0.1093 / 0.0622 / 0.0476 (no pruning 0.1601 / 0.1112 / 0.0677 / 0.0526); with MetaSampler
(session-5 fold models, 5-entry design) 0.0051 / 0.0021 / 0.0012 / 0.0006 vs 0.0058 / 0.0035 /
0.0018 / 0.0017 (no pruning 0.0065 / 0.0035 / 0.0023 / 0.0011). It is below no pruning at
every budget with both samplers, which the second rule was not with MetaSampler (5200
epochs). With the 10-entry-design models MetaSampler alone gets 0.0034 / 0.0011 / 0.0005 /
0.0004 and MetaPruner 0.0022 / 0.0010 / 0.0008 / 0.0003: behind at 2600 epochs only.

The calibrated tail (session 7) keeps more trials at the same threshold, so the threshold was
chosen again (seeds 0-2, 102 runs each, regret at 520 / 1040 / 2600 / 5200 epochs; the
networks are the same, only the probability changes):

* TPE: Gaussian 0.02 (old default) 0.1451 / 0.1035 / 0.0610 / 0.0490; calibrated 0.02
  0.1468 / 0.1035 / 0.0613 / 0.0491; calibrated 0.03 (default) 0.1450 / 0.1022 / 0.0607 /
  0.0493.
* MetaSampler: 0.0022 / 0.0010 / 0.0008 / 0.0003; 0.0024 / 0.0011 / 0.0006 / 0.0005;
  0.0022 / 0.0011 / 0.0006 / 0.0005.
* Random (seed 0, 34 runs): 0.2338 / 0.1490 / 0.1018 / 0.0781; 0.2346 / 0.1497 / 0.1045 /
  0.0784; 0.2338 / 0.1490 / 0.1017 / 0.0772.

Calibrated with 0.02 is behind at 520 epochs with every sampler (TPE +0.0018, se 0.0013,
against 0.03); 0.03 is level with the old default within the noise and gives TPE the best
median speed-up and reach (1.24x, 84/102 runs reaching the no-pruning final, against 1.22x,
79/102). None of them is separable from another at 5200 epochs. Calibrated 0.05 stops more
and ends worse with both samplers (TPE 0.1447 / 0.0996 / 0.0605 / 0.0520, MetaSampler 0.0019 /
0.0013 / 0.0008 / 0.0007). With MetaSampler the session-7 default was behind no pruning
(0.0034 / 0.0011 / 0.0005 / 0.0004) at 2600 and 5200 epochs by 0.0001; the session-9 ramp is
ahead at 520 and 5200 epochs over six seeds and level in between, and with the session-10
design order ahead at 520 epochs (-0.0015, se 0.0003) and level or ahead after.
On YAHPO's held-out test instances (``python -m benchmarks.heldout_pruner``) calibrated 0.02
was the only variant that did not end behind MetaSampler alone (task 167168); it was not
chosen on them.

The starvation guard (session 28): with TPE on LCBench task 189908 (seed 1), the session-27
default completed 5 trials in 4177: after the fifth, every trial was stopped at its first
epoch with a probability of 0.015-0.018 of beating the third best completed final (about 90.9
%), although those trials looked at epoch 1 like the completed ones and several would have
ended at 88-90 %. With the guard that run completes 37 trials in 498 and ends at the same best
value. Regret at 520 / 1040 / 2600 / 5200 epochs, with the guard against without:

* TPE, nine seeds (306 runs, 55 change, all late): the same to four decimals at every budget
  (paired +0.0000, se at most 0.0001), 230 against 232 runs reaching the no-pruning final;
  seeds 0-2: 0.1265 / 0.0891 / 0.0560 / 0.0457 both, 233 against 280 trials a run.
* MetaSampler, six seeds (204 runs, 88 change, late): every run's regret is the same.
* Random, with ``max_expected_misses=1``: 100 runs change; -0.0007 (se 0.0008) / -0.0011
  (0.0024) / +0.0036 (0.0013) at 1040 / 2600 / 5200 epochs. Random search learns nothing
  from a completion, so a forced one only spends 52 epochs; the guard is off by default with
  non-adaptive samplers, whose rows are unchanged.

Cost (``python -m benchmarks.prune_timing``, session 11): a ``prune`` call takes 0.12-0.16 ms
(median, 10 to 500 completed trials, calibrated tail; 0.32-0.39 ms in session 7 and 0.4-0.5
ms in session 6, on busier machines); the study's normalisation is cached per study and
number of completed trials, so the call right after a trial completes rebuilds it (median
0.26 ms with 10 completed trials, 0.80 ms with 500). Torch is never imported.

Example:
    .. code-block:: python

        import optuna
        from optuna_meta import MetaPruner

        def objective(trial):
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            model = make_model(lr)
            for epoch in range(1, 51):
                acc = train_one_epoch_and_validate(model)
                trial.report(acc, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return acc

        study = optuna.create_study(direction="maximize", pruner=MetaPruner())
        study.optimize(objective, n_trials=100)

It combines with any sampler; with :class:`~optuna_meta.MetaSampler`, pruned trials count as
observations at their predicted final value. Under ``HyperbandPruner`` wrappers, the completed
trials of the trial's bracket are the context.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from optuna.pruners import BasePruner
from optuna.samplers import GridSampler, PartialFixedSampler, QMCSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_meta._attrs import ATTR_PREDICTED_FINAL, ATTR_PREFIX, set_user_attr
from optuna_meta._blas import single_threaded_blas
from optuna_meta._logging import get_logger
from optuna_meta._model_io import check_model_source, model_source
from optuna_meta.curve._calibration import TailCalibration
from optuna_meta.curve._features import (
    F_INDEX,
    KAPPA,
    StudyContext,
    build_context,
    clean_curve,
    featurize,
    indistinguishable,
)
from optuna_meta.curve._model_file import DEFAULT_CURVE_MODEL, CurveModel
from optuna_meta.curve._model_file import FORMAT_NAME as CURVE_FORMAT_NAME
from optuna_meta.curve._model_file import FORMAT_VERSION as CURVE_FORMAT_VERSION
from optuna_meta.curve._network import CurveNetwork

if TYPE_CHECKING:
    from optuna.study import Study


_logger = get_logger(__name__)

ATTR_PREDICTED_FINAL_STD = ATTR_PREFIX + "predicted_final_std"
ATTR_PROB_IMPROVEMENT = ATTR_PREFIX + "prob_improvement"

DEFAULT_THRESHOLD = 0.03
"""Prune when P(final beats the ``top_k``-th best completed final) is below this (calibrated
probability; chosen by benchmark: module doc)."""

DEFAULT_TOP_K = 10
"""The target is the 10th best completed final (chosen by benchmark: module doc)."""

DEFAULT_MIN_FRACTION = 0.0
"""No pruning before this fraction of the final step (not tuned: module doc)."""

DEFAULT_N_STARTUP_TRIALS = 1
"""Prune from the first completed trial on (with the ramp below; chosen by benchmark)."""

DEFAULT_N_RAMP_TRIALS = 5
"""The threshold grows linearly to ``threshold`` over the first 5 completed trials."""

DEFAULT_MAX_EXPECTED_MISSES = 1.0
"""With a sampler that learns from completed trials: once the trials stopped since the latest
completion would, by their own predicted probabilities, have held one improvement, trials are
let through until one completes (``MetaPruner._starved``; chosen by benchmark: module doc)."""

AUTO_MEDIAN_OFFSET = 2
"""``median_offset=None`` (the default) uses this offset when the study's sampler does not
adapt to results (:class:`~optuna.samplers.RandomSampler`, ``QMCSampler``, ``GridSampler``),
and 0 (the median itself) with any other sampler (chosen by benchmark: module doc)."""

_CACHE_SIZE = 32

_Ref = Callable[[], object | None]


class _Found(NamedTuple):
    """A study's context for one check: what :meth:`MetaPruner._context` returns."""

    ctx: StudyContext
    targets: np.ndarray
    """The oriented finals a trial must beat: the feasible completed trials', best first."""
    last_step: float
    """The largest last step the completed trials reported."""


@dataclass
class _CacheEntry:
    """Per study: what the context was built from, and the context."""

    n: int
    """Completed trials."""
    found: _Found | None
    known: dict
    """Cleaned curve, oriented final, number and feasibility by trial id."""
    ref: _Ref
    """The storage (weakly)."""
    starts: np.ndarray
    """Each completed curve's first reported step (inf: none), in the study's order."""
    late: np.ndarray
    """Which of them started after the checked step, left out of the context's curves."""


@dataclass(frozen=True)
class CurvePrediction:
    """The curve model's prediction for a running trial, in the user's units.

    Attributes:
        mean: Predicted final value (median of the predictive distribution); once the trial
            has reported the final step, that report.
        std: Predictive standard deviation (0 once the trial has reported the final step).
        prob_improvement: P(final better than the ``top_k``-th best completed final + margin).
        fraction: The trial's progress ``step / T`` (at most 1).
        n_completed: Completed trials the target was chosen among: those with a finite value
            that meet the study's constraints (all of them in a study without constraints).
        at_last_step: Whether the trial has reported the largest last step of the completed
            trials (never pruned then).
    """

    mean: float
    std: float
    prob_improvement: float
    fraction: float
    n_completed: int
    at_last_step: bool = False


class MetaPruner(BasePruner):
    """Prune trials whose predicted final value is unlikely to beat the best completed trial.

    See the module documentation for the decision rule and the recorded user attrs.

    Args:
        model: A shipped curve model's name (default ``"lcbench-curve"``), a path to a curve
            model file, or a loaded :class:`~optuna_meta.curve.CurveModel`. Loaded lazily; a
            name or path that is not a curve model file raises ``ModelFileError`` here.
        threshold: Prune when the probability of beating the target is below this.
        n_startup_trials: No pruning until this many trials have completed.
        n_ramp_trials: While ``n < n_ramp_trials`` trials have completed, the threshold is
            ``threshold * n / n_ramp_trials`` (``1``: no ramp).
        n_warmup_steps: No pruning while ``step < n_warmup_steps``.
        min_fraction: No pruning while ``step / T < min_fraction``.
        top_k: The target is the ``top_k``-th best completed final value (1 = the best;
            capped near the median early in a study, see ``median_offset``):
            a trial continues while it may enter the top ``top_k``. A ``float`` in (0, 1) is a
            fraction of the completed trials (``0.2``: the best 20%, at least the best one),
            which grows more lenient as the study grows. ``1`` prunes the most (best with
            random search), larger values keep more trials (better with TPE, which learns
            from completed ones).
        median_offset: For an ``int`` ``top_k``, the target's rank is at most
            ``ceil(n / 2) - median_offset`` (at least 1) for ``n`` completed trials: while
            fewer than ``2 * (top_k + median_offset)`` have completed, the target is
            ``median_offset`` ranks better than their median (``2``: the best completed
            trial until 6 have completed; ``0``: the median itself). A positive offset
            prunes more early in a study. ``None`` (the default) chooses by the study's
            sampler: 2 with RandomSampler, QMCSampler and GridSampler, 0 otherwise. With
            TPE on LCBench ``median_offset=2, n_ramp_trials=10`` gets better results in the
            first ~1000 epochs and not later, so pass it with TPE only when the budget is
            small (module doc).
        margin: Added to the target in the direction of improvement, in the user's units:
            a trial must be likely to beat the target by ``margin`` to continue (``> 0`` prunes
            more, ``< 0`` less).
        max_resource: The final step ``T``. ``None``: the largest last step of the completed
            trials (trials must then run to a common final step).
        prune_non_finite: Prune a trial as soon as it reports NaN or infinity.
        calibrated: Read the probability from the model's tail calibration (its measured
            errors on tasks held out of its training) when the model has one; ``False`` uses
            the network's Gaussian, as models without a calibration do.
        max_expected_misses: When the probabilities of improvement recorded by the trials
            pruned since the study's latest completion add up to this, trials are not pruned
            on probability until one completes: a study whose completed trials hold a result
            new trials rarely approach cannot prune every trial from then on. ``math.inf``
            turns this off. ``None`` (the default) chooses by the study's sampler: 1 with
            samplers that learn from completed trials (TPE, MetaSampler, any other), off with
            RandomSampler, QMCSampler and GridSampler, whose proposals do not depend on them
            (module doc, "The starvation guard").
        record_predictions: Write the prediction's user attrs at every check (the default:
            the dashboard shows each running trial's latest prediction), or, with ``False``,
            only when the check prunes. Why: that is three storage writes a check; on a
            SQLite file a reported step then costs about twice MedianPruner's
            (``benchmarks/prune_storage.py``). MetaSampler and the starvation guard read
            them of pruned trials only, so both work either way, and the decisions are the
            same.

    Example:
        .. code-block:: python

            study = optuna.create_study(pruner=MetaPruner(threshold=0.03))
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | CurveModel = DEFAULT_CURVE_MODEL,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        n_startup_trials: int = DEFAULT_N_STARTUP_TRIALS,
        n_ramp_trials: int = DEFAULT_N_RAMP_TRIALS,
        n_warmup_steps: int = 0,
        min_fraction: float = DEFAULT_MIN_FRACTION,
        top_k: int | float = DEFAULT_TOP_K,
        median_offset: int | None = None,
        margin: float = 0.0,
        max_resource: int | float | None = None,
        prune_non_finite: bool = True,
        calibrated: bool = True,
        max_expected_misses: float | None = None,
        record_predictions: bool = True,
    ) -> None:
        if not isinstance(model, (str, os.PathLike, CurveModel)):
            raise TypeError(
                "model must be a shipped curve model name, a path to a curve model file or a "
                f"CurveModel; got {type(model).__name__}."
            )
        model_file = None  # the checked file's absolute path
        if not isinstance(model, CurveModel):  # a typo fails here, not silently in the study
            model_file = check_model_source(
                model, CURVE_FORMAT_NAME, CURVE_FORMAT_VERSION, "curve"
            )
        for name, value in (
            ("threshold", threshold),
            ("min_fraction", min_fraction),
            ("margin", margin),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"{name} must be a number, got {value!r}.")
        for name, value in (
            ("n_startup_trials", n_startup_trials),
            ("n_ramp_trials", n_ramp_trials),
            ("n_warmup_steps", n_warmup_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {value!r}.")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}.")
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be >= 0, got {n_startup_trials}.")
        if n_ramp_trials < 1:
            raise ValueError(f"n_ramp_trials must be >= 1, got {n_ramp_trials}.")
        if n_warmup_steps < 0:
            raise ValueError(f"n_warmup_steps must be >= 0, got {n_warmup_steps}.")
        if not 0.0 <= min_fraction <= 1.0:
            raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}.")
        if isinstance(top_k, bool) or not (
            (isinstance(top_k, (int, np.integer)) and top_k >= 1)
            or (isinstance(top_k, (float, np.floating)) and 0.0 < top_k < 1.0)
        ):
            raise ValueError(
                f"top_k must be an int >= 1 or a float in (0, 1) (a fraction), got {top_k!r}."
            )
        if median_offset is not None and (
            isinstance(median_offset, bool)
            or not (isinstance(median_offset, (int, np.integer)) and median_offset >= 0)
        ):
            raise ValueError(
                f"median_offset must be None (by sampler) or an int >= 0, got {median_offset!r}."
            )
        if not math.isfinite(margin):
            raise ValueError(f"margin must be finite, got {margin}.")
        if max_expected_misses is not None:
            if isinstance(max_expected_misses, bool) or not isinstance(
                max_expected_misses, (int, float, np.number)
            ):
                raise TypeError(
                    f"max_expected_misses must be None or a number, got {max_expected_misses!r}."
                )
            if not max_expected_misses > 0:  # also refuses NaN; math.inf turns the guard off
                raise ValueError(f"max_expected_misses must be > 0, got {max_expected_misses}.")
        if max_resource is not None:
            if isinstance(max_resource, bool) or not isinstance(
                max_resource, (int, float, np.number)
            ):
                raise TypeError(f"max_resource must be None or a number, got {max_resource!r}.")
            if not (math.isfinite(max_resource) and max_resource > 0):
                raise ValueError(f"max_resource must be a finite number > 0, got {max_resource}.")
        for name, flag in (
            ("prune_non_finite", prune_non_finite),
            ("calibrated", calibrated),
            ("record_predictions", record_predictions),
        ):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}.")
        self.model = model
        self._model_file = model_file
        self.threshold = float(threshold)
        self.n_startup_trials = int(n_startup_trials)
        self.n_ramp_trials = int(n_ramp_trials)
        self.n_warmup_steps = int(n_warmup_steps)
        self.min_fraction = float(min_fraction)
        self.top_k = float(top_k) if isinstance(top_k, (float, np.floating)) else int(top_k)
        self.median_offset = None if median_offset is None else int(median_offset)
        self.margin = float(margin)
        self.max_resource = max_resource
        self.prune_non_finite = bool(prune_non_finite)
        self.calibrated = bool(calibrated)
        self.record_predictions = bool(record_predictions)
        self.max_expected_misses = (
            None if max_expected_misses is None else float(max_expected_misses)
        )
        self._lock = threading.RLock()
        self._net: tuple[CurveNetwork, TailCalibration | None] | None = None
        self._contexts: OrderedDict[tuple, _CacheEntry] = OrderedDict()
        self._model_failed = False  # the curve model could not be loaded (warned once)
        # (study id, warning) pairs already said, per storage (dropped with the storage).
        self._warned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # -- pickling ------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_net"] = None
        state["_contexts"] = OrderedDict()
        state["_model_failed"] = False  # another process may find the file: try again there
        state.pop("_warned", None)  # weak references do not pickle; __setstate__ remakes
        if isinstance(self.model, CurveModel):
            state["model"] = ("__bytes__", self.model.to_bytes())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        model = state.get("model")
        error = None
        if isinstance(model, tuple) and len(model) == 2 and model[0] == "__bytes__":
            try:
                state["model"] = CurveModel.from_bytes(model[1])
            except Exception as e:  # raising here would lose a Ray trial: this copy
                error = e  # prunes nothing and says why (the bytes pass on unchanged)
        state.setdefault("n_ramp_trials", 1)  # pickled before the ramp existed: none
        state.setdefault("median_offset", 0)  # pickled before the offset existed: the median
        state.setdefault("_model_file", None)  # pickled before the construction-time check
        state.setdefault("max_expected_misses", math.inf)  # pickled before the guard: none
        state.setdefault("record_predictions", True)
        self.__dict__.update(state)
        self._warned = weakref.WeakKeyDictionary()
        self._lock = threading.RLock()
        if error is not None:
            self._model_unusable(error)

    # -- BasePruner API ------------------------------------------------------------------------
    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        if study._is_multi_objective():
            return False
        iv = trial.intermediate_values
        step = trial.last_step
        if step is None:
            return False
        last = iv[step]
        if not math.isfinite(last):
            if self.prune_non_finite:
                # An earlier check's prediction no longer holds: MetaSampler would read it as
                # the value of a trial that diverged.
                set_user_attr(study, trial, ATTR_PREDICTED_FINAL, None)
                set_user_attr(study, trial, ATTR_PREDICTED_FINAL_STD, None)
                _set_attr(study, trial, ATTR_PROB_IMPROVEMENT, 0.0)
                return True
            return False
        if self._model_failed:
            return False
        try:
            self._network()
        except Exception as e:  # a missing, foreign or unreadable file: never prune, say why
            self._model_unusable(e)
            return False
        try:
            pred = self._predict(study, trial)
        except Exception as e:  # never crash a user's study: this check does not prune
            _logger.warning(
                f"MetaPruner could not predict trial {trial.number} "
                f"({type(e).__name__}: {e}); the trial is not pruned at this step."
            )
            return False
        if pred is None:
            return False
        pruned = self._decide(study, trial, step, pred)
        if pruned or self.record_predictions:
            _set_attr(study, trial, ATTR_PREDICTED_FINAL, pred.mean)
            _set_attr(study, trial, ATTR_PREDICTED_FINAL_STD, pred.std)
            _set_attr(study, trial, ATTR_PROB_IMPROVEMENT, pred.prob_improvement)
        return pruned

    def _decide(self, study: Study, trial: FrozenTrial, step: int, pred: CurvePrediction) -> bool:
        """The rule (module doc, 3-4) applied to a prediction."""
        if pred.n_completed < max(self.n_startup_trials, 1):
            return False
        if step < self.n_warmup_steps or pred.fraction < self.min_fraction:
            return False
        if pred.fraction >= 1.0 or pred.at_last_step:
            # The final step, or the last one every completed trial reported (0-based epochs
            # 0..n-1 with ``max_resource=n``): stopping saves nothing and loses the result.
            return False
        if not pred.prob_improvement < self.effective_threshold(pred.n_completed):
            return False  # a NaN probability included: never prune on a broken prediction
        return not self._starved(study, trial)

    def _starved(self, study: Study, trial: FrozenTrial) -> bool:
        """Whether the trials stopped since the study's latest completion add up to a miss.

        Why: the rule compares each trial with the completed ones, and only a completed trial
        changes them. When they hold a result that new trials rarely approach (one outlier
        among few completions), every new trial may fall just under the threshold; stopped
        after a step or two, none completes, the context never changes, and the study prunes
        everything from then on (LCBench task 189908, seed 1: 4177 trials, 5 completed, all
        later ones stopped after one epoch). Each stopped trial had a probability ``p`` of
        beating the target, recorded in its user attrs; their sum over the trials stopped
        since the latest completion (numbered between it and ``trial``) is the expected number
        of improvements thrown away. Once it reaches ``max_expected_misses``, the next trials
        are not pruned on probability until one completes.
        """
        limit = self.max_expected_misses_for(study)
        if not math.isfinite(limit):
            return False
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        missed = 0.0
        # Newest first (storages list a study's trials by number), back to the latest
        # completion: a check reads the trials stopped since, not the whole study (with 5000
        # pruned trials a scan of all cost 4 ms a check; session 32 review).
        for t in reversed(trials):
            if t.state == TrialState.COMPLETE:
                break
            if t.number < trial.number:
                p = t.user_attrs.get(ATTR_PROB_IMPROVEMENT)
                if isinstance(p, (int, float)) and math.isfinite(p):
                    missed += float(p)
        return missed >= limit

    def max_expected_misses_for(self, study: Study) -> float:
        """The ``max_expected_misses`` used in ``study`` (``None`` resolved by its sampler)."""
        if self.max_expected_misses is not None:
            return self.max_expected_misses
        return DEFAULT_MAX_EXPECTED_MISSES if _sampler_adapts(study) else math.inf

    def effective_threshold(self, n_completed: int) -> float:
        """The threshold with ``n_completed`` completed trials (``threshold`` after the ramp)."""
        return self.threshold * min(1.0, n_completed / self.n_ramp_trials)

    def median_offset_for(self, study: Study) -> int:
        """The ``median_offset`` used in ``study`` (``None`` resolved by its sampler)."""
        if self.median_offset is not None:
            return self.median_offset
        return 0 if _sampler_adapts(study) else AUTO_MEDIAN_OFFSET

    def _target_rank(self, n_completed: int, median_offset: int) -> int:
        """The target's rank among ``n_completed`` completed finals (1 = the best)."""
        return _rank(self.top_k, n_completed, median_offset)

    def _model_unusable(self, error: Exception) -> None:
        """Disable pruning in this process; warn once (the sampler's fallback, for a pruner)."""
        with self._lock:
            first = not self._model_failed
            self._model_failed = True
        if first:
            _logger.warning(
                f"MetaPruner cannot load its curve model ({type(error).__name__}: {error}); "
                "it prunes nothing in this process. Pass a valid model file (or the default) "
                "to prune."
            )

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, study: Study, trial: FrozenTrial) -> CurvePrediction | None:
        """The model's prediction for ``trial`` (no user attrs written, no decision).

        ``None`` when the trial has no finite report or the study no completed trial with
        intermediate values.
        """
        return self._predict(study, trial)

    def _predict(self, study: Study, trial: FrozenTrial) -> CurvePrediction | None:
        # Values far outside the study's scale overflow to inf, which `_predict_checked`
        # checks: no numpy warning reaches the user's `should_prune()` (an error under
        # `-W error`).
        with np.errstate(over="ignore", invalid="ignore"):
            return self._predict_checked(study, trial)

    def _predict_checked(self, study: Study, trial: FrozenTrial) -> CurvePrediction | None:
        sign = -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0
        steps, values = _curve(trial, sign)
        if not len(steps):
            return None
        found = self._context(study, sign, float(steps[-1]))
        if found is None:
            return None
        ctx, targets, last_step = found
        self._check_max_resource(study, max(float(steps[-1]), last_step))
        target = None
        if len(targets):
            k = self._target_rank(len(targets), self.median_offset_for(study))
            target = float(targets[k - 1]) + self.margin
        fraction = float(min(steps[-1] / ctx.T, 1.0))
        if fraction >= 1.0:
            # The trial reported the final step: its final is known, and the model's spread
            # (wide with few completed trials: a std of 23 for a loss of 0.25, a median of 1.43
            # for an accuracy of 0.947) would only mislead the dashboard. Never pruned here.
            last = float(values[-1])
            return CurvePrediction(
                mean=sign * last,
                std=0.0,
                prob_improvement=float(target is None or last > target),
                fraction=fraction,
                n_completed=len(targets),
                at_last_step=True,
            )
        _, cal = self._network()
        predicted = self._predict_a(ctx, trial, steps, values)
        if predicted is None:
            return None
        mu, sd, f = predicted
        if target is not None:
            prob = self._prob(ctx, cal, mu, sd, f, target)
        else:  # no feasible completed trial: any feasible result improves on nothing
            prob = 1.0
        if target is not None and prob < 1.0:
            recent = _recent_best(ctx, steps, values)
            if recent is not None:
                # A transient drop (a loss spike) is judged by the trial as it stood at its
                # own recent best, not by the spike.
                before = self._predict_a(ctx, trial, steps[:recent], values[:recent])
                if before is not None:
                    prob = max(prob, self._prob(ctx, cal, *before, target))
        if target is not None and indistinguishable(ctx, steps, values):
            # Nothing tells this trial from the completed ones yet (a plateau they all
            # shared): it is as likely as any of them to end above the target.
            share = sum(t >= target for t in targets) / (len(targets) + 1)
            prob = max(prob, share)
        return CurvePrediction(
            mean=float(ctx.to_user(mu)),  # inf past the float range: the attr is not written
            std=_user_std(ctx, mu, sd),
            prob_improvement=prob,
            fraction=fraction,
            n_completed=len(targets),
            at_last_step=bool(steps[-1] >= last_step),
        )

    @staticmethod
    def _prob(
        ctx: StudyContext,
        cal: TailCalibration | None,
        mu: float,
        sd: float,
        fraction: float,
        target: float,
    ) -> float:
        """P(final > target) for a prediction ``N(mu, sd)`` in ``a`` units."""
        t_a = float(ctx.a(target))
        if cal is None:
            return 0.5 * math.erfc((t_a - mu) / (sd * math.sqrt(2.0)))
        return float(cal.survival((t_a - mu) / sd, fraction, ctx.n_completed))

    def _predict_a(
        self, ctx: StudyContext, trial: FrozenTrial, steps: np.ndarray, values: np.ndarray
    ) -> tuple[float, float, float] | None:
        """``(mu, sd, fraction)`` of the final's ``a`` for a partial curve of ``trial``, or None
        when nothing can be predicted."""
        net, _ = self._network()
        with single_threaded_blas():
            x = self._features(ctx, trial, steps, values)
            if x is None:
                return None
            # Older model files read only the leading features (``SERVED_LAYOUTS``).
            mean_a, std_a = net.predict(x[None, : net.n_inputs])
            mu, sd = self._adjust(ctx, steps, float(mean_a[0]), float(std_a[0]))
        if not (math.isfinite(mu) and math.isfinite(sd) and sd > 0.0):
            # Values at the float limit can overflow the normalisation: no prediction, so no
            # decision (a NaN probability once fell through the threshold test and pruned).
            return None
        return mu, sd, float(x[F_INDEX])

    def _features(
        self, ctx: StudyContext, trial: FrozenTrial, steps: np.ndarray, values: np.ndarray
    ) -> np.ndarray | None:
        """The network's input for ``trial`` (a seam for benchmark variants with more inputs)."""
        return featurize(ctx, steps, values)

    def _adjust(
        self, ctx: StudyContext, steps: np.ndarray, mu: float, sd: float
    ) -> tuple[float, float]:
        """The network's mean and sd in ``a`` units, as used (a seam for benchmark variants)."""
        return mu, sd

    def _network(self) -> tuple[CurveNetwork, TailCalibration | None]:
        net = self._net
        if net is not None:
            return net
        with self._lock:
            if self._net is None:
                model = (
                    self.model
                    if isinstance(self.model, CurveModel)
                    else CurveModel.load(model_source(self.model, self._model_file))
                )
                cal = model.calibration() if self.calibrated else None
                self._net = (model.network(), cal)
            return self._net

    def _context(self, study: Study, sign: float, step: float | None = None) -> _Found | None:
        """The study's completed trials as context, the finals a trial must beat, and the
        completed trials' largest last step.

        The targets hold the oriented finals of the *feasible* completed trials, best first
        (``ctx.finals`` itself when the study sets no constraints): a trial that broke the
        study's constraints (``trial.set_constraint``) is no result to beat, so the target
        comes from the others, while its curve still tells the model how curves of this task
        evolve.

        With ``step`` (the checked trial's last step), completed curves whose first report
        comes after it keep their final but not their curve: resampled, a curve is held at
        its first value back to step 0, and a study whose completed trials reported only at
        the end (results added with ``add_trial``, a reporting interval changed) looked
        finished from the first step on, so a new trial's first report was judged against
        final values (the study's eventual best was pruned at step 1). ``None`` when no
        completed curve has begun by ``step``.
        """
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not completed:
            return None
        try:
            bracket = study._bracket_id  # type: ignore[attr-defined]  # HyperbandPruner
        except AttributeError:
            bracket = None
        storage = study._storage
        key = (id(storage), study._study_id, bracket, sign, self.max_resource)
        n = len(completed)
        with self._lock:
            hit = self._contexts.get(key)
            if hit is not None and hit.ref() is not storage:
                # A freed storage's id was reused by a new one (in-memory studies in a loop,
                # whose trial ids restart at 0): that entry is another study's.
                hit = None
            if (
                hit is not None
                and hit.n == n
                and np.array_equal(_late(hit.starts, step), hit.late)
            ):
                self._contexts.move_to_end(key)
                return hit.found
            # Completed trials never change: their cleaned curves are kept between rebuilds.
            known = dict(hit.known) if hit is not None else {}
        for t in completed:
            if t._trial_id not in known:
                v = t.value
                final = sign * v if v is not None else math.nan
                feasible = all(c <= 0.0 for c in t.constraints.values())
                known[t._trial_id] = (_curve(t, sign), final, t.number, feasible)
        rows = [known[t._trial_id] for t in completed]
        curves = [r[0] for r in rows]
        starts = np.array([c[0][0] if len(c[0]) else np.inf for c in curves])
        late = _late(starts, step)
        ends = [float(r[0][0][-1]) for r in rows if len(r[0][0]) and math.isfinite(r[1])]
        T = float(self.max_resource) if self.max_resource is not None else None
        if T is None and ends:
            T = max(ends)  # of every completed curve, the late ones too
        empty = (np.empty(0), np.empty(0))
        ctx = build_context(
            [empty if is_late else c for c, is_late in zip(curves, late, strict=True)],
            np.array([r[1] for r in rows], dtype=np.float64),
            sign,
            T,
            np.array([r[2] for r in rows]),
        )
        found = None
        if ctx is not None:
            self._warn_uneven_ends(storage, study._study_id, ends, ctx.T)
            targets = ctx.finals
            if not all(r[3] for r in rows):
                ok = np.array([r[3] and math.isfinite(r[1]) for r in rows])
                targets = np.sort(np.array([r[1] for r in rows])[ok])[::-1]
            found = _Found(ctx, targets, max(ends))
        with self._lock:
            self._contexts[key] = _CacheEntry(n, found, known, _reference(storage), starts, late)
            self._contexts.move_to_end(key)
            while len(self._contexts) > _CACHE_SIZE:
                self._contexts.popitem(last=False)
        return found

    def _warn_uneven_ends(
        self, storage: object, study_id: int, ends: list[float], T: float
    ) -> None:
        """Warn once per study when completed trials end well before the final step ``T``.

        Their curves are held at their last value up to ``T``. That is right for a trial that
        your own early stopping ended (its result is final), and wrong when the number of steps
        is itself a hyperparameter: a 10-epoch trial then teaches the model that curves flatten
        after a quarter of the run, and longer trials are judged against it.
        """
        if not ends or min(ends) >= UNEVEN_END_FRACTION * T:
            return
        if self._first_warning(storage, study_id, "uneven"):
            _logger.warning(
                f"MetaPruner: completed trials end at steps {min(ends):g} to {max(ends):g}, and "
                f"it predicts every trial at step {T:g}. Shorter trials count as finished runs, "
                "their curves held flat to the end: right for your own early stopping, wrong "
                "when the number of steps is a hyperparameter (then run every trial to the same "
                "last step, or prune only in studies of one length)."
            )

    def _check_max_resource(self, study: Study, step: float) -> None:
        """Warn once per study when trials report steps far beyond ``max_resource``.

        Why: every check past ``max_resource`` counts as the final step, where nothing is
        pruned; ``max_resource`` in other units than the reports (``num_train_epochs=3``
        while a Hugging Face ``Trainer`` reports global steps 500, 1000, ...) silently turned
        pruning off.
        """
        T = self.max_resource
        if T is None or step <= MAX_RESOURCE_SLACK * T:
            return
        if self._first_warning(study._storage, study._study_id, "max_resource"):
            _logger.warning(
                f"MetaPruner: trials report step {step:g}, beyond max_resource={T:g}, where "
                "every check counts as the final step and nothing is pruned. Give max_resource "
                "in the units of the reported steps (e.g. a Trainer's global steps), or leave "
                "it None to take the completed trials' last step."
            )

    def _first_warning(self, storage: object, study_id: int, kind: str) -> bool:
        """Whether the warning ``kind`` is due in this study: once per study and storage."""
        with self._lock:
            try:  # per storage object: a freed storage's id may be reused by a new one
                warned = self._warned.setdefault(storage, set())
            except TypeError:  # a storage that refuses weak references: warn every time
                warned = set()
            if (study_id, kind) in warned:
                return False
            warned.add((study_id, kind))
            return True


UNEVEN_END_FRACTION = 0.5
"""Completed trials ending before this fraction of the final step trigger one warning."""

MAX_RESOURCE_SLACK = 1.5
"""Reports beyond this multiple of ``max_resource`` trigger one warning (a step or two past it
is the common off-by-one of 0-based and 1-based epochs, not a unit mistake)."""


def _late(starts: np.ndarray, step: float | None) -> np.ndarray:
    """Which completed curves (by their first reported step) begin after ``step`` (none when
    no step is given)."""
    if step is None:
        return np.zeros(len(starts), dtype=bool)
    return np.isfinite(starts) & (starts > step)


def _reference(obj: object) -> _Ref:
    """A weak reference to ``obj`` (a strong one for the rare types that refuse weak ones)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def _sampler_adapts(study: Study) -> bool:
    """Whether ``study``'s sampler learns from results (assumed for a restricted study object
    that does not expose its sampler)."""
    try:
        sampler = study.sampler
    except AttributeError:
        return True
    return not _is_non_adaptive(sampler)


def _is_non_adaptive(sampler: object) -> bool:
    """Whether ``sampler``'s proposals ignore the results (random, quasi-random, grid).

    With such a sampler pruning only saves epochs: a good trial stopped by mistake costs that
    trial and nothing else, so a harder early target pays (measured with RandomSampler).
    An adaptive sampler learns from what is pruned: TPE ranks pruned trials below every
    completed one, so each good trial stopped by mistake steers it away from a good region,
    and a harder early target costs more late than it gains early (module doc).
    """
    if isinstance(sampler, PartialFixedSampler):  # fixes some values; its base proposes
        return _is_non_adaptive(getattr(sampler, "_base_sampler", None))
    return isinstance(sampler, (RandomSampler, QMCSampler, GridSampler))


def _rank(top_k: int | float, n: int, median_offset: int = 0) -> int:
    """The rank of the target among ``n`` completed finals (1 = the best).

    An ``int`` ``top_k`` is capped at ``median_offset`` ranks above the median's rank,
    ``ceil(n / 2) - median_offset`` (at least 1): early in a study a trial must be likely to
    reach the better part of the completed trials, not merely to beat the worst of them (which
    stopped almost nothing before ``top_k`` trials had completed).
    """
    if isinstance(top_k, int):
        k = min(top_k, math.ceil(n / 2) - median_offset)
    else:
        k = math.ceil(top_k * n)
    return max(1, min(k, n))


def _curve(trial: FrozenTrial, sign: float) -> tuple[np.ndarray, np.ndarray]:
    iv = trial.intermediate_values
    n = len(iv)
    return clean_curve(
        np.fromiter(iv.keys(), float, count=n), np.fromiter(iv.values(), float, count=n), sign
    )


SPIKE_SCALES = 1.0
"""A report this many study scales below the trial's own best report counts as a drop.

Why: the prediction follows the latest report, so a loss spike that recovers within a few
epochs (large learning rates, warm restarts) got its trial pruned at the spike: all of
MetaPruner's wrong prunes on ``benchmarks/curve_families.py``'s ``spike`` family came within a
few epochs of a spike's onset. Round numbers, not tuned; measured in session 34 (spike: 137 ->
6 wrong prunes; LCBench CV with TPE level, 66 of 102 runs unchanged; ``benchmarks/README.md``).
With MetaSampler the completed finals lie close together, so the scale is small and report
noise counts as a drop too (more trials run on: +0.0004 regret at 5200 epochs there)."""

SPIKE_WINDOW = 0.1
"""A drop within this fraction of the final step after the trial's best report is judged as
transient: the trial is judged as it stood at that best too (:func:`_recent_best`). A drop
that lasts longer (a run that diverged and stays high) is judged as it is."""


def _recent_best(ctx: StudyContext, steps: np.ndarray, values: np.ndarray) -> int | None:
    """How many reports end at the trial's best one, when the last report dropped far below
    it within :data:`SPIKE_WINDOW` of the final step; None otherwise."""
    if len(values) < 2:
        return None
    i = int(np.argmax(values))
    if i == len(values) - 1 or not math.isfinite(float(values[i])):
        return None
    if values[-1] > values[i] - SPIKE_SCALES * ctx.scale:
        return None
    if (steps[-1] - steps[i]) > SPIKE_WINDOW * ctx.T:
        return None
    return i + 1


def _user_std(ctx: StudyContext, mu: float, sd: float) -> float:
    """Std of ``centre + scale * KAPPA * sinh(A)``, ``A ~ N(mu, sd^2)`` (exact; capped)."""
    mu = max(min(mu, 300.0), -300.0)
    s2 = min(sd * sd, 100.0)
    e_sinh = math.sinh(mu) * math.exp(s2 / 2.0)
    e_sinh2 = (math.cosh(2.0 * mu) * math.exp(2.0 * s2) - 1.0) / 2.0
    var = e_sinh2 - e_sinh * e_sinh
    if not math.isfinite(var):
        return math.nan
    var = max(var, 0.0)
    out = ctx.scale * KAPPA * math.sqrt(var)
    return float(out) if math.isfinite(out) else math.nan


def _set_attr(study: Study, trial: FrozenTrial, key: str, value: float) -> None:
    if math.isfinite(value):
        set_user_attr(study, trial, key, float(value))
