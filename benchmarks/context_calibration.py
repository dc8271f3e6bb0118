"""Tail calibration by context size: a table per number of completed trials (session 29).

Why: MetaPruner reads its probability of improvement from the curve model's tail calibration,
the quantiles of the network's standardised errors on tasks held out of its training
(:mod:`optuna_meta.curve._calibration`), kept by curve fraction only. The errors also depend
on how many completed trials the model read as context. On fold 0's inner folds (the
errors the calibration is fitted on), the share of checks made in the first 8 % of the curve
whose probability from the one table is below 0.03 is 4.9 / 6.4 / 4.8 % with 1 / 2 / 3-4
completed curves and 2.2 / 1.7 / 2.2 % with 5-9 / 10-24 / 25+ (nominal: 3 %); on the scored
tasks, with random configurations, 8.7 % with 2 and 2.5 % with 40
(``results/curve_tails_by_context_lcbench.md``). The threshold ramp (``threshold * n / 5``
below 5 completed trials) covers the first; nothing covers the second, where the pruner is
more cautious than its threshold says.

The variant: each CV fold's curve model keeps its network, bit for bit, and gets a calibration
fitted by context size as well (``TailCalibration.fit(z, f, n=...)``, one table per range of
``TAIL_N_EDGES``) from the same held-out errors, recomputed as meta-training computes them
(``optuna_meta.curve._train.heldout_errors``). So any change in pruning is the calibration's.

Run (raw results beside the defaults'; pair with ``benchmarks.paired``)::

    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.context_calibration:TPE_CTXCAL
    python -m benchmarks.paired tpe_meta_ctxcal tpe_meta_guard
    python -m benchmarks.curve_tails --contexts 2,3,5,10,40 --reps 4 --seed 3 \\
        --fold-model benchmarks.context_calibration:ctxcal_fold_model \\
        --out benchmarks/results/curve_tails_by_context_ctxcal_lcbench.md
"""

from __future__ import annotations

from benchmarks.meta_methods import disk_cached, fold_training_tasks
from benchmarks.meta_pruner_methods import (
    CURVES_CACHE,
    META_MODELS,
    N_CONFIGS,
    TRAINING_VERSION,
    fold_curve_model,
    fold_model_method,
)
from benchmarks.pruning import PrunerMethod
from optuna_meta.curve import CurveModel
from optuna_meta.curve._calibration import CALIBRATION_NAMES, TailCalibration
from optuna_meta.curve._features import F_INDEX, FEATURE_NAMES, context_sizes
from optuna_meta.curve._train import (
    CurveTrainConfig,
    _task_examples,
    heldout_errors,
    lcbench_curves,
)

VARIANT_VERSION = 1


def ctxcal_fold_model(train_tasks: tuple[str, ...]) -> CurveModel:
    """A CV fold's default curve model with its calibration refitted by context size
    (cached; the network is the fold model's own)."""
    cfg = CurveTrainConfig()
    tasks = fold_training_tasks("lcbench", train_tasks)

    def build(digest: str) -> CurveModel:
        base = fold_curve_model(train_tasks)
        X, y, task = _task_examples(
            lcbench_curves(tasks, N_CONFIGS, 0, CURVES_CACHE),
            cfg.n_episodes,
            cfg.queries_per_episode,
            cfg.seed,
            (0.0, 100.0),
        )
        z = heldout_errors(X, y, task, cfg)
        assert z is not None
        pooled = TailCalibration.fit(z, X[:, F_INDEX])
        shipped = base.calibration()
        if pooled is None or shipped is None or abs(pooled.z - shipped.z).max() > 1e-4:
            raise RuntimeError("The recomputed errors do not give the fold model's calibration.")
        cal = TailCalibration.fit(z, X[:, F_INDEX], n=context_sizes(X))
        assert cal is not None and cal.n is not None
        weights = {k: v for k, v in base.weights.items() if k not in CALIBRATION_NAMES}
        weights.update(cal.arrays())
        manifest = {**base.manifest, "name": f"lcbench-curve-ctxcal-{digest}"}
        return CurveModel(weights, manifest)

    key = [tasks, N_CONFIGS, vars(cfg), list(FEATURE_NAMES), TRAINING_VERSION, VARIANT_VERSION]
    return disk_cached("curve_ctxcal_lcbench", key, CurveModel.load, build)


def _method(sampler: str, suffix: str = "", **kwargs: object) -> PrunerMethod:
    kwargs.setdefault("max_expected_misses", None)  # the default since session 28
    shown = ", ".join(f"{k}={v}" for k, v in kwargs.items() if v is not None)
    curve = f"curve{TRAINING_VERSION}+ctxcal{VARIANT_VERSION}+guard1"
    return fold_model_method(
        f"{sampler}_meta_ctxcal{suffix}",
        f"{sampler} + MetaPruner({shown}) [tail calibration by context size; session 29 "
        "variant; 5-fold task CV]",
        sampler,
        ctxcal_fold_model,
        f"{curve}+{META_MODELS}" if sampler == "meta" else curve,
        **kwargs,
    )


TPE_CTXCAL = _method("tpe")
"""Against ``tpe_meta_guard`` (the default, same networks)."""
META_CTXCAL = _method("meta")
"""Against ``meta_meta_guard``."""
RANDOM_CTXCAL = _method("random")
"""Against ``random_meta_default`` (the guard is off with random search)."""
TPE_CTXCAL_NORAMP = _method("tpe", "_noramp", n_ramp_trials=1)
"""Without the threshold ramp: the calibration by context size in its place."""
