"""A monotone fit instead of the least-squares line in the curve model's early-rank inputs.

Why: ``ctx_lin_final`` (:func:`optuna_meta.curve._features.rank_context`) is the final that a
least-squares line through the completed curves' (value at the trial's fraction, final) pairs
gives the trial. On a task where most configurations stay near chance and the others spread
out (LCBench 189873, a YAHPO test instance), the line through that cluster and the spread
puts the stuck trials too high: from 20 % of the curve the shipped model predicts them 6.39
accuracy points above their finals, the 45-input model of sessions 7-26 3.03
(``benchmarks/heldout_errors.py``). This variant replaces the line's prediction with an
isotonic (pool-adjacent-violators) fit of the finals on those values, read at the trial's
value by linear interpolation; beyond the completed curves' range it continues from the fit's
end with the line's slope (at least 0), so a new leader is still extrapolated. The other two
inputs are unchanged. It is chosen on the CV tasks (LCBench's 168329 is the one alike, with
36 % of its configurations stuck), not on the test instance.

Run::

    python -m benchmarks.isotonic_line --cv        # curve-prediction errors, 5-fold task CV
    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.isotonic_line:TPE_ISO

Results: ``benchmarks/README.md``, "A monotone line input".
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._cli import write_report
from benchmarks.config_curve import train_variant
from benchmarks.heldout_errors import CHANCE_SHARE, sample_study, signed_error_table, stuck_level
from benchmarks.meta_methods import N_CONFIGS, disk_cached, fold_training_tasks
from benchmarks.meta_pruner_methods import (
    CURVES_CACHE,
    TRAINING_VERSION,
    fold_curve_model,
    fold_model_method,
)
from benchmarks.objectives import all_tasks, scored_tasks
from benchmarks.protocol import DEFAULT_FOLDS, FOLD_SEED, task_folds
from optuna_meta import MetaPruner
from optuna_meta.curve import FEATURE_NAMES, CurveModel, StudyContext
from optuna_meta.curve._features import LINE_MARGIN, MIN_RANK_CURVES, _at, featurize
from optuna_meta.curve._train import CurveTrainConfig, lcbench_curves

VARIANT_VERSION = 1
I_LINE = FEATURE_NAMES.index("ctx_lin_final")
STEPS = np.arange(1, 53, dtype=np.float64)
CUTS = {"10%": 5, "20%": 10, "50%": 26}


def isotonic(y: np.ndarray) -> np.ndarray:
    """The non-decreasing least-squares fit to ``y`` (pool adjacent violators).

    Equal to scikit-learn's ``IsotonicRegression().fit_transform(range(len(y)), y)``
    (``tests/test_benchmarks.py``), without its per-call overhead at every prune check: 6 / 19
    / 57 us for 10 / 50 / 150 values, against 420-460 us (``timeit`` on the 2-core machine).
    """
    vals: list[float] = []
    wts: list[int] = []
    for v in y:
        vals.append(float(v))
        wts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            wts[-2] = w
            del vals[-1], wts[-1]
    return np.repeat(vals, wts)


def monotone_final(ctx: StudyContext, at_f: np.ndarray, a_last: float) -> float | None:
    """The isotonic fit's final at ``a_last`` (``None`` with too few or constant values)."""
    fin = ctx.finals_a
    if len(fin) < MIN_RANK_CURVES or float(at_f.std()) <= 1e-9:
        return None
    order = np.argsort(at_f, kind="stable")
    x, fit = at_f[order], isotonic(fin[order])
    st = ctx.finals_stats
    beta = max(float(np.mean((at_f - at_f.mean()) * st.dev)) / float(at_f.var()), 0.0)
    if a_last < x[0]:
        value = fit[0] + beta * (a_last - x[0])
    elif a_last > x[-1]:
        value = fit[-1] + beta * (a_last - x[-1])
    else:
        value = float(np.interp(a_last, x, fit))
    return min(max(value, st.lo - LINE_MARGIN), st.hi + LINE_MARGIN)


def iso_featurize(ctx: StudyContext, steps: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """:func:`featurize` with ``ctx_lin_final`` from the monotone fit."""
    x = featurize(ctx, steps, values)
    if x is None:
        return None
    f = float(x[0])
    at_f = _at(ctx.curves, np.array([f]))[:, 0]
    value = monotone_final(ctx, at_f, float(x[3]))  # x[3]: a_last
    if value is not None:
        x[I_LINE] = value
    return x


class IsotonicPruner(MetaPruner):
    """MetaPruner whose network reads the monotone fit (its model trained on it too)."""

    def _features(self, ctx: StudyContext, trial: Any, steps: np.ndarray, values: np.ndarray):
        return iso_featurize(ctx, steps, values)


def iso_fold_model(train_tasks: tuple[str, ...]) -> CurveModel:
    """The variant's curve model for a CV fold (cached; trained as the default is)."""
    cfg = CurveTrainConfig()
    tasks = fold_training_tasks("lcbench", train_tasks)

    def build(digest: str) -> CurveModel:
        weights = train_variant(tasks, featurizer=iso_featurize)
        return CurveModel(
            weights, {"name": f"lcbench-curve-iso-{digest}", "training_tasks": tasks}
        )

    key = [tasks, N_CONFIGS, vars(cfg), list(FEATURE_NAMES), TRAINING_VERSION, VARIANT_VERSION]
    return disk_cached("curve_iso_lcbench", key, CurveModel.load, build)


TPE_ISO = fold_model_method(
    "tpe_meta_iso",
    "TPE + MetaPruner(max_expected_misses=inf) [monotone line input; session 28 variant; "
    "5-fold task CV]",
    "tpe",
    iso_fold_model,
    f"curve{TRAINING_VERSION}+iso{VARIANT_VERSION}",
    pruner_class=IsotonicPruner,
)
"""The variant against ``tpe_meta_default`` (the session-27 default, no guard)."""

TPE_ISO_GUARD = fold_model_method(
    "tpe_meta_iso_guard",
    "TPE + MetaPruner() [monotone line input, with the starvation guard; session 29; 5-fold "
    "task CV]",
    "tpe",
    iso_fold_model,
    f"curve{TRAINING_VERSION}+iso{VARIANT_VERSION}+guard1",
    pruner_class=IsotonicPruner,
    max_expected_misses=None,
)
"""The variant with the default's guard, against ``tpe_meta_guard`` over nine seeds."""


def cv_errors(n_context: int = 20, n_queries: int = 100, reps: int = 2) -> str:
    """Point-prediction errors of the default and the variant fold models, 5-fold task CV."""
    scored = scored_tasks("lcbench")
    folds = task_folds(scored, DEFAULT_FOLDS, FOLD_SEED)
    pool = all_tasks("lcbench")
    curves = lcbench_curves(scored, N_CONFIGS, 0, CURVES_CACHE)
    rng = np.random.default_rng(0)
    err: dict[tuple[str, str, str, str], list[np.ndarray]] = {}
    for fold in folds:
        train = tuple(t for t in pool if t not in fold)
        nets = {
            "default": (fold_curve_model(train).network(), featurize),
            "monotone": (iso_fold_model(train).network(), iso_featurize),
        }
        for task in fold:
            V = curves[task].astype(np.float64)
            fin = V[:, -1]
            for _ in range(reps):
                ctx, q = sample_study(V, rng, n_context, n_queries)
                group = np.where(fin[q] < stuck_level(fin), "stuck", "learns")
                for cut_name, cut in CUTS.items():
                    for name, (net, feat) in nets.items():
                        X = np.stack([feat(ctx, STEPS[:cut], V[i, :cut]) for i in q])
                        mu, _ = net.predict(X)
                        e = ctx.to_user(mu) - fin[q]
                        for g in ("stuck", "learns"):
                            key = (name, cut_name, "168329" if task == "168329" else "others", g)
                            err.setdefault(key, []).append(e[group == g])
                        err.setdefault((name, cut_name, "all", "all"), []).append(e)
    return signed_error_table(dict(sorted(err.items(), key=lambda kv: kv[0][1:])), "tasks")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cv", action="store_true", help="curve-prediction errors, task CV")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not args.cv:
        parser.error("nothing to do: pass --cv (pruner runs go through benchmarks.run_pruners)")
    intro = (
        "Point-prediction errors (prediction minus final, accuracy points) of the default "
        "fold curve models and of the monotone-line variant, 5-fold task CV over LCBench's 34 "
        f"tasks; 20 random completed trials, 100 queries, {args.reps} repetitions per task; "
        f"'stuck': final within {CHANCE_SHARE:g} of the task's range above its worst."
    )
    write_report(intro, cv_errors(reps=args.reps), "benchmarks.isotonic_line", argv, args.out)


if __name__ == "__main__":
    main()
