"""MetaPruner in the pruner protocol, with one curve model meta-trained per task-CV fold.

For every CV fold the curve model is meta-trained on that fold's training tasks only (YAHPO's
test instances are always left out too, as for the shipped model), so a task is never scored by
a model that saw its curves. Models are cached on disk by fold, data and settings
(``benchmarks/results/cache/curve_lcbench_<digest>.npz``), the sampled training curves in
``benchmarks/results/cache/curves_lcbench_val_accuracy_2000_0.npz``.

Run (all 34 tasks, seed 0; the ``tpe_nop`` / ``random_nop`` baselines must be saved for the
speed-up):

.. code-block:: bash

    python -m benchmarks.run_pruners --full --seeds 0 -v --no-report \\
        --extra benchmarks.meta_pruner_methods:METHODS

``METHODS``: ``MetaPruner()`` with its defaults after TPE, after Random and after MetaSampler,
plus MetaSampler without pruning (``meta_nop``, the baseline of its speed-up). The variants
that chose the default ``top_k`` ran with the first version's rule (pruning waited for
``top_k`` completed trials; labelled "v1 rule"): ``TPE_K1``, ``TPE_K5``, ``TPE_K10``,
``TPE_K20``, ``TPE_F20``, ``RANDOM_K1``, ``RANDOM_K5``, ``RANDOM_K10`` and ``META_K10``
(``--extra benchmarks.meta_pruner_methods:TPE_K5``); ``VARIANTS`` lists them. Their results
stay in ``results/raw`` under their names; rerunning them now would use the current rule.

Rows measured with the second rule (the target was the worst completed trial until ``top_k``
had completed; session 6 capped the rank at the median instead) were renamed with a ``_v2``
suffix (``tpe_meta_v2``, ``meta_meta_v2``, ``random_meta_v2``, ``tpe_meta_t05_v2``,
``random_meta_t05_v2``, ``meta_meta_t01_v2``, ``tpe_meta_s2_v2``) and labelled "v2 rule": the
methods of the same names without the suffix now run the current rule.

Session 7 gave the curve models a tail calibration (``TRAINING_VERSION`` 3; the networks are
those of version 2) and made ``threshold=0.03`` the default. The session-6 default rows were
renamed ``*_meta_gauss`` (``TPE_GAUSS``, ``META_GAUSS``, ``RANDOM_GAUSS`` rerun them with
``calibrated=False``); ``*_meta_cal02`` are the calibrated tail with the old threshold.

Session 9 made pruning start at the first completion with a threshold ramp
(``n_startup_trials=1``, ``n_ramp_trials=5``). The session-8 default rows were renamed
``*_meta_s5`` (``TPE_S5``, ``RANDOM_S5``, ``META_S5``), and every variant defined before
session 9 passes ``n_ramp_trials=1`` so that it reruns as measured; the ramp variants are
labelled "with the ramp".

Session 11 added ``median_offset``, whose default follows the sampler (2 with random,
quasi-random and grid search, 0 otherwise). The session-10 Random default row was renamed
``random_meta_med`` (``RANDOM_MED``), and every variant defined before session 11 passes
``median_offset=0`` and its ramp, so it reruns as measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from optuna.pruners import NopPruner
from optuna.samplers import RandomSampler, TPESampler
from optuna.trial import TrialState

from benchmarks.meta_methods import (
    CACHE_DIR,
    FIXED_SCHEDULE,
    MODEL_RECIPE,
    N_CONFIGS,
    SAMPLER_BEHAVIOUR,
    disk_cached,
    fold_training_tasks,
    meta_sampler_method,
)
from benchmarks.protocol import BenchContext
from benchmarks.pruning import PrunerMethod
from optuna_meta import MetaPruner
from optuna_meta.curve import FEATURE_NAMES, CurveModel, featurize
from optuna_meta.curve._features import BASE_FEATURE_NAMES, N_BASE_FEATURES
from optuna_meta.curve._train import CurveTrainConfig, build_curve_model, lcbench_curves
from optuna_meta.pruner._pruner import DEFAULT_MAX_EXPECTED_MISSES
from optuna_meta.surrogate._design import DEFAULT_DESIGN_LENGTH

CURVES_CACHE = CACHE_DIR / f"curves_lcbench_val_accuracy_{N_CONFIGS}_0.npz"
TRAINING_VERSION = 4
"""Bumped whenever the curve model's training or features change (invalidates cached models).
3: the models carry a tail calibration (session 7); their networks equal version 2's.
4: the early-rank inputs (``RANK_FEATURE_NAMES``, session 27: session 26's
``benchmarks.rank_context`` variant with the line's residual shrunk, ``RESID_PRIOR_WEIGHT``)."""


def fold_curve_model(
    train_tasks: tuple[str, ...], config: CurveTrainConfig | None = None
) -> CurveModel:
    """The curve model meta-trained on ``train_tasks`` minus test instances, cached on disk."""
    cfg = config or CurveTrainConfig()
    tasks = fold_training_tasks("lcbench", train_tasks)
    return disk_cached(
        "curve_lcbench",
        [tasks, N_CONFIGS, vars(cfg), list(FEATURE_NAMES), TRAINING_VERSION],
        CurveModel.load,
        lambda digest: build_curve_model(
            lcbench_curves(tasks, N_CONFIGS, 0, CURVES_CACHE),
            cfg,
            name=f"lcbench-curve-cv-{digest}",
        ),
    )


def _curve_model(ctx: BenchContext, config: CurveTrainConfig | None = None) -> CurveModel:
    """The curve model of the run's CV fold, built once per process (``ctx.cache``)."""
    key = ("curve-model", ctx.train_tasks)
    if key not in ctx.cache:
        ctx.cache[key] = fold_curve_model(ctx.train_tasks, config)
    return ctx.cache[key]


def curve_model_tasks(model: CurveModel) -> set[str]:
    """The task ids in a curve model's ``training_tasks`` (storage study names such as
    ``lcbench/3945`` reduced to ``3945``): what it must never be scored on."""
    return {str(t).rsplit("/", 1)[-1] for t in model.manifest.get("training_tasks", [])}


def meta_pruner_method(
    name: str,
    label: str,
    sampler: str = "tpe",
    config: CurveTrainConfig | None = None,
    pruner_class: type[MetaPruner] = MetaPruner,
    version_tag: str = "",
    **pruner_kwargs: Any,
) -> PrunerMethod:
    """``(sampler, pruner_class)`` with one curve model per fold; ``pruner_kwargs`` go to it.

    ``version_tag`` is appended to the results' version (a variant's own version, so a saved
    run of an older form of it is not resumed).

    Every method measured before session 28 ran without the starvation guard, so
    ``max_expected_misses`` is ``math.inf`` unless given: they rerun as measured. The defaults
    since session 28 (``TPE_GUARD``, ``RANDOM_GUARD``, ``META_GUARD``) pass 1, the default."""
    if sampler not in ("tpe", "random", "meta"):
        raise ValueError(f"sampler must be 'tpe', 'random' or 'meta', got {sampler!r}")
    pruner_kwargs.setdefault("max_expected_misses", math.inf)

    def factory(ctx: BenchContext):
        return _sampler(sampler, ctx), pruner_class(_curve_model(ctx, config), **pruner_kwargs)

    return PrunerMethod(
        name,
        factory,
        label=label,
        baseline=f"{sampler}_nop",
        version=_version(sampler) + version_tag,
    )


def base45_fold_model(train_tasks: tuple[str, ...]) -> CurveModel:
    """The 45-input default of sessions 7-26 for a CV fold (the control of session 27's checks).

    Cached under ``TRAINING_VERSION`` 3's key; rebuilt, it is the same network, since the
    first 45 features and the emulated studies did not change: trained on
    ``featurize(...)[:N_BASE_FEATURES]``.
    """
    from benchmarks.config_curve import train_variant

    cfg = CurveTrainConfig()
    tasks = fold_training_tasks("lcbench", train_tasks)

    def base_featurize(ctx, steps, values):
        x = featurize(ctx, steps, values)
        return None if x is None else x[:N_BASE_FEATURES]

    def build(digest: str) -> CurveModel:
        weights = train_variant(tasks, featurizer=base_featurize, n_features=N_BASE_FEATURES)
        return CurveModel(weights, {"name": f"lcbench-curve-cv-{digest}", "training_tasks": tasks})

    key = [tasks, N_CONFIGS, vars(cfg), list(BASE_FEATURE_NAMES), 3]
    return disk_cached("curve_lcbench", key, CurveModel.load, build)


def fold_model_method(
    name: str,
    label: str,
    sampler: str,
    fold_model: Callable[[tuple[str, ...]], CurveModel],
    version: str,
    pruner_class: type[MetaPruner] = MetaPruner,
    **pruner_kwargs: Any,
) -> PrunerMethod:
    """``(sampler, pruner_class(fold_model(train_tasks)))``: a variant's own curve model for
    each CV fold, built once per process (``ctx.cache``). As in :func:`meta_pruner_method`,
    ``max_expected_misses`` is ``math.inf`` unless given."""
    pruner_kwargs.setdefault("max_expected_misses", math.inf)

    def factory(ctx: BenchContext):
        key = ("curve-model", fold_model.__qualname__, ctx.train_tasks)
        if key not in ctx.cache:
            ctx.cache[key] = fold_model(ctx.train_tasks)
        return _sampler(sampler, ctx), pruner_class(ctx.cache[key], **pruner_kwargs)

    return PrunerMethod(name, factory, label=label, baseline=f"{sampler}_nop", version=version)


def _base45_method(sampler: str) -> PrunerMethod:
    """``(sampler, MetaPruner(the 45-input fold model))``: session 26's default."""
    curve = "curve3"
    return fold_model_method(
        f"{sampler}_meta_base45",
        f"{_SAMPLER_LABELS[sampler]} + MetaPruner() [the 45-input curve model of sessions "
        "7-26, session 27's control; 5-fold task CV]",
        sampler,
        base45_fold_model,
        f"{curve}+{META_MODELS}" if sampler == "meta" else curve,
    )


META_MODELS = f"recipe{MODEL_RECIPE}+design{DEFAULT_DESIGN_LENGTH}+sampler{SAMPLER_BEHAVIOUR}"
"""The MetaSampler fold models' recipe, design length and the sampler's behaviour (part of the
results' version)."""


def _version(sampler: str) -> str:
    """What cached models a method's results depend on (a saved run of another is not resumed)."""
    curve = f"curve{TRAINING_VERSION}"
    return f"{curve}+{META_MODELS}" if sampler == "meta" else curve


_META_SAMPLER = meta_sampler_method()
"""MetaSampler with the surrogate of the task's CV fold (the sampler benchmark's method)."""
_SAMPLER_LABELS = {"tpe": "TPE", "random": "Random", "meta": "MetaSampler"}


def _sampler(kind: str, ctx: BenchContext):
    """The run's sampler; MetaSampler gets the surrogate of the task's CV fold."""
    if kind == "tpe":
        return TPESampler(seed=ctx.seed)
    if kind == "random":
        return RandomSampler(seed=ctx.seed)
    return _META_SAMPLER.factory(ctx)


def _label(sampler: str, kwargs: dict[str, Any], tag: str) -> str:
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    tag = f"{tag}; " if tag else ""
    return f"{_SAMPLER_LABELS[sampler]} + MetaPruner({args}) [{tag}5-fold task CV]"


def _method(
    sampler: str,
    suffix: str,
    tag: str,
    *,
    ramp: bool = False,
    defaults: bool = False,
    **kwargs: Any,
) -> PrunerMethod:
    """``<sampler>_meta<suffix>``, labelled with its arguments and ``tag`` (e.g. its rule).

    Every method but the defaults (``defaults=True``) reruns as it was measured: ``ramp=False``
    (the variants measured before session 9) passes ``n_ramp_trials=1``, since they ran before
    the threshold ramp existed, and ``ramp=True`` the ramp of sessions 9-10
    (``n_ramp_trials=5``) unless it sets one; all pass ``median_offset=0`` (the target of
    sessions 6-10) unless they set one.
    """
    label = _label(sampler, kwargs, tag)
    if not defaults:
        kwargs.setdefault("n_ramp_trials", 5 if ramp else 1)
        kwargs.setdefault("median_offset", 0)
    return meta_pruner_method(f"{sampler}_meta{suffix}", label, sampler, **kwargs)


_V1 = "v1 rule"
TPE_K1 = _method("tpe", "_k1", _V1, threshold=0.05, top_k=1)
TPE_K5 = _method("tpe", "_k5", _V1, threshold=0.05, top_k=5)
TPE_K10 = _method("tpe", "_k10", _V1, threshold=0.05, top_k=10)
TPE_K20 = _method("tpe", "_k20", _V1, threshold=0.05, top_k=20)
TPE_F20 = _method("tpe", "_f20", _V1, threshold=0.05, top_k=0.2)
TPE_BASE45 = _base45_method("tpe")
META_BASE45 = _base45_method("meta")
TPE_DEFAULT = _method("tpe", "_default", "defaults", defaults=True)
RANDOM_DEFAULT = _method("random", "_default", "defaults", defaults=True)
META_DEFAULT = _method("meta", "_default", "defaults", defaults=True)
"""``MetaPruner()`` until session 27 (without the starvation guard of session 28: the
``*_GUARD`` methods below are the defaults since). Since session 11 its ``median_offset``
follows the sampler (2 with random, quasi-random and grid search, 0 otherwise), so the Random
default row was measured again; the TPE and MetaSampler rows stand."""
RANDOM_MED = _method("random", "_med", "median target, sessions 9-10 default", ramp=True)
"""The default of sessions 9-10 with Random (``median_offset=0``)."""
_OFFSET = ""
TPE_OFFSET1 = _method("tpe", "_off1", _OFFSET, ramp=True, median_offset=1, n_ramp_trials=5)
TPE_OFFSET2 = _method("tpe", "_off2", _OFFSET, ramp=True, median_offset=2, n_ramp_trials=5)
META_OFFSET2 = _method("meta", "_off2", _OFFSET, ramp=True, median_offset=2, n_ramp_trials=5)
"""The target one or two ranks better than the median while that cap applies, with the ramp
over 5 trials (session 11): better early, worse late with TPE; level with MetaSampler."""
TPE_OFFSET2_RAMP10 = _method(
    "tpe", "_off2_ramp10", _OFFSET, ramp=True, median_offset=2, n_ramp_trials=10
)
"""Offset 2 with the ramp over 10 (session 11): the default for part of the session, until
three fresh seeds (9-11) put it behind no pruning at 5200 epochs over twelve seeds."""
TPE_OFFSET1_RAMP10 = _method(
    "tpe", "_off1_ramp10", _OFFSET, ramp=True, median_offset=1, n_ramp_trials=10
)
RANDOM_OFFSET2_RAMP10 = _method(
    "random", "_off2_ramp10", _OFFSET, ramp=True, median_offset=2, n_ramp_trials=10
)
META_OFFSET2_RAMP10 = _method(
    "meta", "_off2_ramp10", _OFFSET, ramp=True, median_offset=2, n_ramp_trials=10
)
"""The longer ramp with offset 1 (TPE, nine seeds) and with Random and MetaSampler (seeds
0-2; behind their defaults)."""
_S8 = "session-8 default, no ramp"
TPE_S5 = _method("tpe", "_s5", _S8, n_startup_trials=5)
RANDOM_S5 = _method("random", "_s5", _S8, n_startup_trials=5)
META_S5 = _method("meta", "_s5", _S8, n_startup_trials=5)
"""The defaults until session 8: no pruning before 5 completed trials, then ``threshold``."""
RANDOM_K1 = _method("random", "_k1", _V1, threshold=0.05, top_k=1)
RANDOM_K5 = _method("random", "_k5", _V1, threshold=0.05, top_k=5)
RANDOM_K10 = _method("random", "_k10", _V1, threshold=0.05, top_k=10)
META_NOP = PrunerMethod(
    "meta_nop",
    lambda ctx: (_sampler("meta", ctx), NopPruner()),
    label="MetaSampler + NopPruner [5-fold task CV]",
    version=META_MODELS,
)
"""MetaSampler without pruning: the baseline of the MetaSampler + MetaPruner rows."""
META_K10 = _method("meta", "_k10", _V1, threshold=0.05, top_k=10)
TPE_S2 = _method("tpe", "_s2", "", n_startup_trials=2)
"""The current rule, pruning from 2 completed trials on (the default waits for 5). Session 7,
seeds 0-2: better early, worse than no pruning at 5200 epochs (not adopted)."""
META_S2 = _method("meta", "_s2", "", n_startup_trials=2)
RANDOM_S2 = _method("random", "_s2", "", n_startup_trials=2)
META_T05 = _method("meta", "_t05", "old default", threshold=0.05)
"""The default threshold until session 4 (0.02 since: module doc of optuna_meta.pruner)."""
META_T01 = _method("meta", "_t01", "Gaussian tail", threshold=0.01, calibrated=False)
"""A more cautious threshold (not adopted: no better than the default with MetaSampler)."""
TPE_T01 = _method("tpe", "_t01", "Gaussian tail", threshold=0.01, calibrated=False)
"""The cautious threshold with TPE (not adopted: level with the default)."""
TPE_T05 = _method("tpe", "_t05", "old default", threshold=0.05)
RANDOM_T05 = _method("random", "_t05", "old default", threshold=0.05)
_GAUSS = "Gaussian tail, session-6 default"
TPE_GAUSS = _method("tpe", "_gauss", _GAUSS, threshold=0.02, calibrated=False)
META_GAUSS = _method("meta", "_gauss", _GAUSS, threshold=0.02, calibrated=False)
RANDOM_GAUSS = _method("random", "_gauss", _GAUSS, threshold=0.02, calibrated=False)
"""The session-6 default: the network's Gaussian tail, threshold 0.02 (measured with the
version-2 models, whose networks the calibrated version-3 models share)."""
_CAL = "calibrated tail"
TPE_CAL02 = _method("tpe", "_cal02", _CAL, threshold=0.02)
META_CAL02 = _method("meta", "_cal02", _CAL, threshold=0.02)
RANDOM_CAL02 = _method("random", "_cal02", _CAL, threshold=0.02)
"""The calibrated tail with the old threshold: it stops fewer trials (not adopted)."""
TPE_CAL05 = _method("tpe", "_t05c", _CAL, threshold=0.05)
META_CAL05 = _method("meta", "_t05c", _CAL, threshold=0.05)
"""The calibrated tail with threshold 0.05: worse late with both samplers (not adopted)."""
TPE_S1 = _method("tpe", "_s1", "", n_startup_trials=1)
"""Pruning from the first completed trial on (session 8, seeds 0-2): better early, behind no
pruning at 5200 epochs (not adopted)."""


class _EarlyEagerPruner(MetaPruner):
    """Benchmark-only (session 8, not adopted): eager at the start of a study.

    The threshold is ``max(threshold, eagerness / n)`` for ``n`` finished (completed or pruned)
    trials: the idea was that stopping a would-be winner early in a study is cheap, because
    later trials set the final result. It is worse late with TPE, so it is not in the package.
    Single-threaded use only (it rewrites ``self.threshold`` before each check).
    """

    def __init__(self, model: Any, *, eagerness: float, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._base_threshold = self.threshold
        self.eagerness = eagerness

    def prune(self, study: Any, trial: Any) -> bool:
        finished = study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
        )
        n = max(len(finished), 1)
        self.threshold = min(1.0, max(self._base_threshold, self.eagerness / n))
        return super().prune(study, trial)


def _eager_method(suffix: str, eagerness: float) -> PrunerMethod:
    label = (
        f"TPE + MetaPruner(n_startup_trials=1) [threshold max(0.03, {eagerness:g} / finished "
        "trials); 5-fold task CV]"
    )
    return meta_pruner_method(
        f"tpe_meta{suffix}",
        label,
        "tpe",
        pruner_class=_EarlyEagerPruner,
        eagerness=eagerness,
        n_startup_trials=1,
        n_ramp_trials=1,
        median_offset=0,
    )


TPE_EAGER05 = _eager_method("_df05", 0.5)
TPE_EAGER10 = _eager_method("_df10", 1.0)
"""Eager early pruning (session 8, seeds 0-2): worse than ``TPE_S1`` (not adopted)."""


class _FractionThresholdPruner(MetaPruner):
    """Benchmark-only (session 11, not adopted): the threshold falls with the curve fraction.

    ``slope * threshold * (1 - f)`` (ramped as usual) at curve fraction ``f``: a check early in
    a curve has most of the trial's cost ahead of it, so it should stop a doubtful trial more
    readily than a check near the end. Single-threaded use only (it keeps the fraction of the
    check in progress).
    """

    def __init__(self, model: Any, *, slope: float, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.slope = slope
        self._fraction = 0.0

    def _predict(self, study: Any, trial: Any) -> Any:
        pred = super()._predict(study, trial)
        if pred is not None:
            self._fraction = pred.fraction
        return pred

    def effective_threshold(self, n_completed: int) -> float:
        ramped = super().effective_threshold(n_completed)
        return ramped * self.slope * (1.0 - self._fraction)


class _RankDivisorPruner(MetaPruner):
    """Benchmark-only (session 11, not adopted): target rank ``ceil(n / divisor)``.

    Or, with ``best_until``, the best completed trial while at most ``best_until`` have
    completed and the median after. Both capped at ``top_k``.
    """

    def __init__(
        self, model: Any, *, divisor: float = 2.0, best_until: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(model, **kwargs)
        self.divisor = divisor
        self.best_until = best_until

    def _target_rank(self, n_completed: int, median_offset: int) -> int:
        if n_completed <= self.best_until:
            return 1
        k = min(int(self.top_k), math.ceil(n_completed / self.divisor))
        return max(1, min(k, n_completed))


def _session11_method(
    suffix: str, label: str, pruner_class: type[MetaPruner], **kw: Any
) -> PrunerMethod:
    """A benchmark-only TPE rule of session 11, with that session's other settings
    (``median_offset=0``, the ramp over 5 completed trials)."""
    return meta_pruner_method(
        f"tpe_meta{suffix}",
        f"TPE + MetaPruner() [{label}; 5-fold task CV]",
        "tpe",
        pruner_class=pruner_class,
        median_offset=0,
        n_ramp_trials=5,
        **kw,
    )


TPE_FRACTION2 = _session11_method(
    "_fr2", "threshold 2 x 0.03 x (1 - f)", _FractionThresholdPruner, slope=2.0
)
TPE_FRACTION3 = _session11_method(
    "_fr3", "threshold 3 x 0.03 x (1 - f)", _FractionThresholdPruner, slope=3.0
)
TPE_DIVISOR4 = _session11_method("_q4", "target rank ceil(n / 4)", _RankDivisorPruner, divisor=4.0)
TPE_DIVISOR3 = _session11_method("_q3", "target rank ceil(n / 3)", _RankDivisorPruner, divisor=3.0)
TPE_BEST4 = _session11_method(
    "_e4", "best completed until 4, then the median", _RankDivisorPruner, best_until=4
)
"""Other ways to stop more early in a study (session 11, seeds 0-2; not adopted)."""


_RAMP = "with the ramp"
TPE_RAMP_S2 = _method("tpe", "_ramp_s2", _RAMP, ramp=True, n_startup_trials=2)
TPE_RAMP3 = _method("tpe", "_ramp3", _RAMP, ramp=True, n_ramp_trials=3)
TPE_RAMP10 = _method("tpe", "_ramp10", _RAMP, ramp=True, n_ramp_trials=10)
TPE_RAMP_T05 = _method("tpe", "_ramp_t05", _RAMP, ramp=True, threshold=0.05)
"""The ramp's neighbours (session 9; seeds 0-2, ``TPE_RAMP_T05`` seeds 0-5): level with the
default or behind it (not adopted)."""

VARIANTS = [
    RANDOM_MED,
    META_OFFSET2,
    TPE_OFFSET2_RAMP10,
    TPE_OFFSET1_RAMP10,
    RANDOM_OFFSET2_RAMP10,
    META_OFFSET2_RAMP10,
    TPE_OFFSET1,
    TPE_OFFSET2,
    TPE_FRACTION2,
    TPE_FRACTION3,
    TPE_DIVISOR4,
    TPE_DIVISOR3,
    TPE_BEST4,
    TPE_S5,
    RANDOM_S5,
    META_S5,
    TPE_RAMP_S2,
    TPE_RAMP3,
    TPE_RAMP10,
    TPE_RAMP_T05,
    TPE_S1,
    TPE_EAGER05,
    TPE_EAGER10,
    TPE_S2,
    META_S2,
    RANDOM_S2,
    TPE_T05,
    META_T05,
    RANDOM_T05,
    TPE_K1,
    TPE_K5,
    TPE_K10,
    TPE_K20,
    TPE_F20,
    RANDOM_K1,
    RANDOM_K5,
    RANDOM_K10,
    META_K10,
    META_T01,
    TPE_T01,
    TPE_GAUSS,
    META_GAUSS,
    RANDOM_GAUSS,
    TPE_CAL02,
    META_CAL02,
    RANDOM_CAL02,
    TPE_CAL05,
    META_CAL05,
]


def _fixed_schedule_method(
    name: str, label: str, pruned: bool, baseline: str | None
) -> PrunerMethod:
    def factory(ctx: BenchContext):
        sampler = FIXED_SCHEDULE[0].factory(ctx)
        if not pruned:
            return sampler, NopPruner()
        return sampler, MetaPruner(_curve_model(ctx), max_expected_misses=math.inf)

    version = f"{_version('meta')}+fixedschedule" if pruned else f"{META_MODELS}+fixedschedule"
    return PrunerMethod(name, factory, label=label, baseline=baseline, version=version)


META_NOP_FIXEDSCHEDULE = _fixed_schedule_method(
    "meta_nop_fixedschedule",
    "MetaSampler (fixed fallback schedule) + NopPruner [5-fold task CV]",
    pruned=False,
    baseline=None,
)
META_DEFAULT_FIXEDSCHEDULE = _fixed_schedule_method(
    "meta_meta_default_fixedschedule",
    "MetaSampler (fixed fallback schedule) + MetaPruner() [defaults; 5-fold task CV]",
    pruned=True,
    baseline="meta_nop_fixedschedule",
)
"""Session 15's fixed fallback schedule (``adaptive_fallback=False``) on the same fold models:
the paired baselines of the MetaSampler rows since session 17."""

METHODS = [TPE_DEFAULT, RANDOM_DEFAULT, META_NOP, META_DEFAULT]
"""``MetaPruner()`` with TPE, Random and MetaSampler, and MetaSampler without pruning."""

_GUARD = "the starvation guard (session 28)"


def _guard_method(sampler: str, **kwargs: Any) -> PrunerMethod:
    kwargs.setdefault("max_expected_misses", None)  # the default: chosen by the sampler
    shown = {k: v for k, v in kwargs.items() if v is not None}
    return meta_pruner_method(
        f"{sampler}_meta_guard",
        _label(sampler, shown, _GUARD),
        sampler,
        version_tag="+guard1",
        **kwargs,
    )


TPE_GUARD = _guard_method("tpe")
META_GUARD = _guard_method("meta")
"""``MetaPruner()``, the default since session 28: with the starvation guard
(``MetaPruner._starved``, ``max_expected_misses`` 1 with these samplers). Measured on seeds
0-2 against the session-27 default rows (``*_meta_default``, the same fold models)."""
RANDOM_GUARD = _guard_method("random", max_expected_misses=DEFAULT_MAX_EXPECTED_MISSES)
"""The guard with random search (seeds 0-2): behind at 5200 epochs, so ``MetaPruner()`` keeps
it off with non-adaptive samplers and ``RANDOM_DEFAULT`` stays the Random default's row."""


TPE_STARTUP5 = meta_pruner_method(
    "tpe_meta_startup5",
    _label(
        "tpe", {"n_startup_trials": 5}, "the README's advice for curves that cross (session 34)"
    ),
    "tpe",
    version_tag="+guard1",
    max_expected_misses=None,
    n_startup_trials=5,
)
"""``MetaPruner(n_startup_trials=5)`` with today's other defaults: what the README's advice for
curves that cross (``benchmarks/curve_families.py``) costs on LCBench."""


def _offset_guard_method(sampler: str) -> PrunerMethod:
    kwargs = {"median_offset": 2, "n_ramp_trials": 10}
    return meta_pruner_method(
        f"{sampler}_meta_off2r10_guard",
        _label(sampler, kwargs, "with the starvation guard; session 30 variant"),
        sampler,
        version_tag="+guard1",
        max_expected_misses=None,
        **kwargs,
    )


TPE_OFF2R10_GUARD = _offset_guard_method("tpe")
META_OFF2R10_GUARD = _offset_guard_method("meta")
"""Session 11's small-budget option (offset 2, ramp over 10) measured again with the
early-rank model and the starvation guard (session 30): better early, level in the mean at
5200 epochs, but worse than no pruning there in more runs (150 of 408 against 97 with TPE),
so not the default."""
