"""Tail calibration of the curve model: how often the final value lands far above the prediction.

MetaPruner stops a trial when the predicted probability of reaching a target falls below a
threshold (0.02 by default), so what matters is the *upper tail* of the predictive
distribution: a final value above ``mean + 2.054 sd`` should happen in 2 % of the cases. This
script measures that share (and the 5 % one) on the CV folds' held-out tasks, for each fold's
curve model (the pruner benchmark's models), by how much of the curve has been seen.

Protocol, per scored task and repetition: a context of 40 completed trials and 40 query
trials, both drawn at random from the task's 2,000 sampled configurations (``random``) or from
its 80 best (``strong``: what a strong sampler's study looks like); each query is predicted
after epochs 1, 2, 3, 5, 8, 12, 18, 26, 36 and 45 of 52.

The last two columns check the models' tail calibration (:mod:`optuna_meta.curve._calibration`,
fitted at meta-training time on inner task folds of the fold's training tasks, so the scored
task is unseen by it too): the share of finals whose calibrated probability of being reached,
``P(final >= observed)``, was below 2 % (5 %). A calibrated tail gives 2 % (5 %).

.. code-block:: bash

    python -m benchmarks.curve_tails      # -> benchmarks/results/curve_tails_lcbench.md
    python -m benchmarks.curve_tails --contexts 2,3,5,10,40 --seed 3
    # -> benchmarks/results/curve_tails_by_context_lcbench.md (:func:`by_context`)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._cli import import_attr, parse_ints
from benchmarks.meta_pruner_methods import CURVES_CACHE, N_CONFIGS, fold_curve_model
from benchmarks.objectives import scored_tasks
from benchmarks.protocol import make_contexts
from optuna_meta.curve import CurveModel
from optuna_meta.curve._calibration import TailCalibration
from optuna_meta.curve._features import F_INDEX, StudyContext, build_context, featurize
from optuna_meta.curve._train import lcbench_curves

RESULTS = Path(__file__).parent / "results" / "curve_tails_lcbench.md"
BY_CONTEXT_NAME = "curve_tails_by_context_lcbench.md"
CUTS = (1, 2, 3, 5, 8, 12, 18, 26, 36, 45)
BINS = ((1, 3), (3, 9), (9, 27), (27, 52))
N_CONTEXT = 40
N_QUERY = 40
STRONG_POOL = 80
Z_02, Z_05 = 2.054, 1.645
"""Standard-normal quantiles 0.98 and 0.95: nominal upper-tail shares 2 % and 5 %."""


STEPS = np.arange(1, 53, dtype=float)
FoldModel = Callable[[tuple[str, ...]], CurveModel]
"""A CV fold's curve model from its training tasks (default: the pruner benchmark's)."""


def _study(C: np.ndarray, rows: np.ndarray) -> StudyContext:
    """The completed trials ``rows`` of a task's curves ``C`` as a study's context."""
    study = build_context(
        [(STEPS, C[i]) for i in rows], C[rows, -1], 1.0, None, np.arange(len(rows))
    )
    assert study is not None
    return study


def _checks(
    net: Any,
    cal: TailCalibration | None,
    study: StudyContext,
    curve: np.ndarray,
    cuts: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """``z = (a(final) - mean) / sd`` of a query checked after each of ``cuts`` epochs, and its
    calibrated ``P(Z > z)`` (NaN for a model without a tail calibration)."""
    X = np.stack([featurize(study, STEPS[:k], curve[:k]) for k in cuts])
    mu, sd = net.predict(X[:, : net.n_inputs])
    z = (study.a(curve[-1]) - mu) / sd
    if cal is None:
        return z, np.full(len(z), np.nan)
    n = study.n_completed
    return z, np.array([cal.survival(v, x[F_INDEX], n) for v, x in zip(z, X, strict=True)])


def standardised_residuals(
    regime: str, reps: int, seed: int, fold_model: FoldModel = fold_curve_model
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, epochs seen, calibrated P(Z > z))`` of every prediction.

    ``z = (a(final) - mean) / sd``; the calibrated probability is NaN for a model without a
    tail calibration. ``fold_model(train_tasks)`` gives each fold's model.
    """
    tasks = scored_tasks("lcbench")
    curves = lcbench_curves(tasks, N_CONFIGS, 0, CURVES_CACHE)
    rng = np.random.default_rng(seed)
    nets: dict[tuple[str, ...], tuple[object, TailCalibration | None]] = {}
    cuts = np.asarray(CUTS)
    zs, seen, ps = [], [], []
    for ctx in make_contexts("lcbench", tasks, [0]):
        if ctx.train_tasks not in nets:
            model = fold_model(ctx.train_tasks)
            nets[ctx.train_tasks] = (model.network(), model.calibration())
        net, cal = nets[ctx.train_tasks]
        C = curves[ctx.task].astype(np.float64)
        best_first = np.argsort(-C[:, -1])
        for _ in range(reps):
            pool = best_first[:STRONG_POOL] if regime == "strong" else np.arange(len(C))
            pick = rng.permutation(pool)[: N_CONTEXT + N_QUERY]
            study = _study(C, pick[:N_CONTEXT])
            for i in pick[N_CONTEXT:]:
                z, p = _checks(net, cal, study, C[i], CUTS)
                zs.append(z)
                seen.append(cuts)
                ps.append(p)
    return np.concatenate(zs), np.concatenate(seen), np.concatenate(ps)


def table(regimes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> str:
    lines = [
        "| queries from | epochs seen | predictions | final > mean + 2.054 sd (2 %) "
        "| final > mean + 1.645 sd (5 %) | final < mean - 2.054 sd (2 %) | sd of z "
        "| calibrated P < 2 % | calibrated P < 5 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for regime, (z, seen, p) in regimes.items():
        for lo, hi in BINS:
            sel = (seen >= lo) & (seen < hi)
            zz, pp = z[sel], p[sel]
            lines.append(
                f"| {regime} | {lo}-{hi - 1} | {len(zz)} | {np.mean(zz > Z_02):.2%} "
                f"| {np.mean(zz > Z_05):.2%} | {np.mean(zz < -Z_02):.2%} | {zz.std():.2f} "
                f"| {np.mean(pp < 0.02):.2%} | {np.mean(pp < 0.05):.2%} |"
            )
    return "\n".join(lines)


CONTEXT_CUTS = (1, 2, 3, 5, 8, 12, 18, 26)
CONTEXT_BINS = (("1-3", slice(0, 3)), ("5-8", slice(3, 5)), ("12-26", slice(5, 8)))
"""Epochs seen at the checks of :func:`by_context`, and their groups (slices of the cuts)."""
CONTEXT_QUERIES = 30


def by_context(
    sizes: Sequence[int], reps: int, seed: int, fold_model: FoldModel = fold_curve_model
) -> str:
    """Calibrated probabilities against context size: with ``n`` random completed trials as
    context (``n`` in ``sizes``) and 30 random queries per task and repetition, the share of
    finals given ``P(final >= observed) < 0.03`` (the default threshold) and ``< 0.01``. A
    calibrated model gives 3 % and 1 % whatever the context; MetaPruner's ramp (``threshold *
    n / 5`` below 5 completed trials) assumes fewer completed curves make it over-confident.
    ``fold_model(train_tasks)`` gives each fold's model."""
    tasks = scored_tasks("lcbench")
    curves = lcbench_curves(tasks, N_CONFIGS, 0, CURVES_CACHE)
    rng = np.random.default_rng(seed)
    nets: dict[tuple[str, ...], tuple[Any, TailCalibration]] = {}
    probs: dict[int, list[np.ndarray]] = {n: [] for n in sizes}
    for ctx in make_contexts("lcbench", tasks, [0]):
        if ctx.train_tasks not in nets:
            model = fold_model(ctx.train_tasks)
            cal = model.calibration()
            assert cal is not None
            nets[ctx.train_tasks] = (model.network(), cal)
        net, cal = nets[ctx.train_tasks]
        C = curves[ctx.task].astype(np.float64)
        for n in sizes:
            for _ in range(reps):
                pick = rng.permutation(len(C))[: n + CONTEXT_QUERIES]
                study = _study(C, pick[:n])
                for i in pick[n:]:
                    probs[n].append(_checks(net, cal, study, C[i], CONTEXT_CUTS)[1])
    lines = [
        "| completed trials | epochs seen | predictions | calibrated P < 0.03 | P < 0.01 |",
        "|---|---|---|---|---|",
    ]
    for n in sizes:
        P = np.array(probs[n])
        for label, cols in CONTEXT_BINS:
            q = P[:, cols].ravel()
            lines.append(
                f"| {n} | {label} | {len(q)} | {np.mean(q < 0.03):.1%} | {np.mean(q < 0.01):.1%} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--contexts",
        help="e.g. 2,3,5,10,40: calibration by context size instead (by_context; --out "
        "defaults to results/curve_tails_by_context_lcbench.md)",
    )
    p.add_argument(
        "--fold-model",
        help="module:function giving each fold's curve model from its training tasks (a "
        "variant's; default: the pruner benchmark's fold models)",
    )
    args = p.parse_args(argv)
    fold_model: FoldModel = fold_curve_model
    shown = ""
    if args.fold_model:
        fold_model = import_attr(args.fold_model, "--fold-model")
        shown = f" --fold-model {args.fold_model}"
    if args.contexts:
        sizes = parse_ints(args.contexts)
        out = args.out if args.out != RESULTS else RESULTS.with_name(BY_CONTEXT_NAME)
        text = (
            "# Curve model: calibrated probabilities by context size (5-fold task CV)\n\n"
            f"Command: `python -m benchmarks.curve_tails --contexts {args.contexts} --reps "
            f"{args.reps} --seed {args.seed}{shown}`. Protocol: "
            f"`benchmarks.curve_tails.by_context`; 34 tasks x {args.reps} repetitions x "
            f"{CONTEXT_QUERIES} queries per context size."
            "\n\n" + by_context(sizes, args.reps, args.seed, fold_model) + "\n"
        )
        out.write_text(text)
        print(text)
        return text
    regimes = {
        "random": standardised_residuals("random", args.reps, args.seed, fold_model),
        "best 80": standardised_residuals("strong", args.reps, args.seed, fold_model),
    }
    text = (
        "# Curve model: upper-tail calibration on held-out tasks (5-fold task CV)\n\n"
        f"Command: `python -m benchmarks.curve_tails --reps {args.reps} --seed {args.seed}"
        f"{shown}`. "
        "Protocol: `benchmarks/curve_tails.py` (module doc); 34 tasks x "
        f"{args.reps} repetitions x {N_QUERY} queries x {len(CUTS)} cuts.\n\n"
        + table(regimes)
        + "\n"
    )
    args.out.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
