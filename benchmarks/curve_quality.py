"""Curve-prediction quality on held-out LCBench tasks: the meta-learned model vs baselines.

Protocol (5-fold task CV, the folds of the pruner benchmark: ``task_folds(scored_tasks, 5)``):
for each of the 34 LCBench tasks, the curve model of its fold (meta-trained on the other folds'
tasks minus YAHPO's test instances, :func:`benchmarks.meta_pruner_methods.fold_curve_model`) is
scored on curves of that task (``curves_lcbench_val_accuracy_2000_0.npz``: 2000 random
configurations per task, YAHPO surrogate, epochs 1..52). Per task and repetition, ``context``
random configurations play the study's completed trials (the model's normalisation and
in-context features) and ``queries`` other random configurations are cut at 10 %, 20 % and
50 % of the curve (epochs 5, 10, 26); each method predicts their epoch-52 value.

Methods:

* **MetaPruner's curve model**: point prediction = the median of its predictive distribution
  (the ``predicted_final`` attr), std = ``predicted_final_std``. Two log-likelihoods: of its own
  predictive distribution (Gaussian in ``asinh`` units, mapped to accuracy points), and of a
  Gaussian with its reported mean and std.
* **Domhan-style ensemble** (:mod:`benchmarks.curve_baseline`): five parametric families
  fitted by ``scipy.optimize.curve_fit`` to the partial curve alone; Gaussian log-likelihood.
* **last value**: the last observed value (MAE only).

Decision columns (what a pruner at threshold 0.05 would do): "pruned" = share of queries with
``P(final > best context final) < 0.05``; "winners lost" = among queries whose final beats the
context's best, the share that would be pruned.

Run: ``python -m benchmarks.curve_quality`` (writes ``benchmarks/results/curve_quality.md``);
the shipped model on YAHPO's test instances: ``python -m benchmarks.curve_quality --shipped
--reps 10 --out benchmarks/results/curve_quality_heldout.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.curve_baseline import extrapolate
from benchmarks.meta_pruner_methods import (
    CURVES_CACHE,
    N_CONFIGS,
    curve_model_tasks,
    fold_curve_model,
)
from benchmarks.objectives import all_tasks, scored_tasks
from benchmarks.protocol import DEFAULT_FOLDS, FOLD_SEED, task_folds
from optuna_meta.curve import DEFAULT_CURVE_MODEL, CurveModel, build_context, featurize
from optuna_meta.curve._features import KAPPA
from optuna_meta.curve._train import lcbench_curves
from optuna_meta.data import TEST_INSTANCES
from optuna_meta.pruner._pruner import DEFAULT_THRESHOLD, _user_std

RESULTS = Path(__file__).resolve().parent / "results"
CUTS = {"10%": 5, "20%": 10, "50%": 26}
THRESHOLD = DEFAULT_THRESHOLD
STEPS = np.arange(1, 53, dtype=np.float64)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _gauss_ll(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -_LOG_SQRT_2PI - np.log(std) - 0.5 * ((y - mean) / std) ** 2


def _norm_sf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc)(x / math.sqrt(2.0))


def evaluate(
    n_context: int = 20,
    n_queries: int = 100,
    n_reps: int = 1,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    verbose: bool = True,
    shipped: bool = False,
    model_path: str | Path | None = None,
) -> dict:
    """Score the curve models; ``shipped``: the shipped model instead of the fold models;
    ``model_path``: that model file instead (e.g. one ``optuna-meta train-curve`` wrote).

    The shipped model saw every task but YAHPO's test instances, so ``shipped=True`` scores
    only those (``tasks`` must be a subset of them); so does ``model_path``, which must not
    have been trained on any of them either (its manifest's ``training_tasks`` are checked).
    """
    held_out = set(TEST_INSTANCES["lcbench"])
    if shipped and model_path is not None:
        raise ValueError("give shipped=True or model_path, not both")
    if shipped:
        model_path = DEFAULT_CURVE_MODEL
    one_model = CurveModel.load(model_path) if model_path is not None else None
    if one_model is not None:
        tasks = list(tasks) if tasks is not None else sorted(held_out)
        trained = curve_model_tasks(one_model)
        if not set(tasks) <= held_out or trained & set(tasks):
            raise ValueError(
                f"The model was trained on {sorted(trained)}: score it on the test instances "
                f"{sorted(held_out)} it did not see, only."
            )
    scored = scored_tasks("lcbench")
    folds = task_folds(scored, DEFAULT_FOLDS, FOLD_SEED)
    pool = all_tasks("lcbench")
    wanted = set(tasks) if tasks is not None else set(scored)
    curves = lcbench_curves(scored, N_CONFIGS, 0, CURVES_CACHE)
    rng = np.random.default_rng(seed)
    rows: dict[str, dict[str, list]] = {c: {} for c in CUTS}
    t0 = time.perf_counter()
    for fold_tasks in folds:
        todo = [t for t in fold_tasks if t in wanted]
        if not todo:
            continue
        train = tuple(t for t in pool if t not in fold_tasks)
        model = one_model or fold_curve_model(train)
        net = model.network()
        for task in todo:
            V = curves[task].astype(np.float64)
            for _ in range(n_reps):
                perm = rng.permutation(len(V))
                ctx_rows, q_rows = perm[:n_context], perm[n_context : n_context + n_queries]
                ctx = build_context([(STEPS, V[i]) for i in ctx_rows], V[ctx_rows, -1], 1.0)
                assert ctx is not None
                best = float(ctx.finals[0])
                y = V[q_rows, -1]
                for name, cut in CUTS.items():
                    X = np.stack([featurize(ctx, STEPS[:cut], V[i, :cut]) for i in q_rows])
                    mu, sd = net.predict(X[:, : net.n_inputs])  # older files: fewer inputs
                    mean = ctx.to_user(mu)
                    std = np.array([_user_std(ctx, m, s) for m, s in zip(mu, sd, strict=True)])
                    z = (y - ctx.centre) / ctx.scale
                    a = np.arcsinh(z / KAPPA)
                    # density of y under the model: N(a(y); mu, sd) * da/dy
                    log_jac = -np.log(ctx.scale * KAPPA) - 0.5 * np.log1p((z / KAPPA) ** 2)
                    ll_own = _gauss_ll(a, mu, sd) + log_jac
                    p_model = _norm_sf((float(ctx.a(best)) - mu) / sd)
                    dom = np.array([extrapolate(STEPS[:cut], V[i, :cut], 52.0) for i in q_rows])
                    p_dom = _norm_sf((best - dom[:, 0]) / dom[:, 1])
                    r = rows[name]
                    win = y > best
                    for key, val in (
                        ("model_ae", np.abs(mean - y)),
                        ("model_ll_own", ll_own),
                        ("model_ll_gauss", _gauss_ll(y, mean, std)),
                        ("dom_ae", np.abs(dom[:, 0] - y)),
                        ("dom_ll", _gauss_ll(y, dom[:, 0], dom[:, 1])),
                        ("last_ae", np.abs(V[q_rows, cut - 1] - y)),
                        ("model_pruned", p_model < THRESHOLD),
                        ("dom_pruned", p_dom < THRESHOLD),
                        ("model_lost", (p_model < THRESHOLD)[win]),
                        ("dom_lost", (p_dom < THRESHOLD)[win]),
                    ):
                        r.setdefault(key, []).append(np.asarray(val, dtype=np.float64))
                    r.setdefault("task_model_ae", []).append(float(np.mean(np.abs(mean - y))))
                    r.setdefault("task_dom_ae", []).append(float(np.mean(np.abs(dom[:, 0] - y))))
            if verbose:
                print(f"task {task} done, {time.perf_counter() - t0:.0f}s", flush=True)
    summary: dict = {
        "n_context": n_context,
        "n_queries": n_queries,
        "n_reps": n_reps,
        "seed": seed,
        "tasks": sorted(wanted, key=int),
        "model": (
            "5-fold task CV"
            if one_model is None
            else "shipped lcbench-curve"
            if shipped
            else f"{one_model.manifest.get('name', model_path)}, test instances"
        ),
        "cuts": {},
    }
    for name, r in rows.items():
        if not r:
            continue
        cat = {k: np.concatenate(v) for k, v in r.items() if not k.startswith("task_")}
        tm, td = np.asarray(r["task_model_ae"]), np.asarray(r["task_dom_ae"])
        summary["cuts"][name] = {
            **{k: float(np.mean(v)) if len(v) else math.nan for k, v in cat.items()},
            "model_ll_own_median": float(np.median(cat["model_ll_own"])),
            "dom_ll_median": float(np.median(cat["dom_ll"])),
            "n_predictions": len(cat["model_ae"]),
            "n_winners": len(cat["model_lost"]),
            "tasks_model_mae_better": int(np.sum(tm < td)),
            "n_task_reps": len(tm),
        }
    return summary


def to_markdown(s: dict, command: str) -> str:
    lines = [
        "# Curve-prediction quality: LCBench, held-out tasks "
        f"({s.get('model', '5-fold task CV')})",
        "",
        f"Command: `{command}`. Protocol: `benchmarks/curve_quality.py` (module doc). "
        f"{len(s['tasks'])} tasks x {s['n_reps']} repetition(s); per repetition {s['n_context']} "
        f"random completed trials as context and {s['n_queries']} random query curves; target: "
        "val_accuracy (%) at epoch 52, predicted from epochs 1..5 (10 %), 1..10 (20 %), "
        "1..26 (50 %).",
        "",
        "| curve observed | predictions | MAE model | MAE Domhan | MAE last value "
        "| LL model (own) | LL model (Gaussian) | LL Domhan (Gaussian) "
        "| (task, repetition) cells where model MAE < Domhan |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in s["cuts"].items():
        lines.append(
            f"| {name} | {c['n_predictions']} | {c['model_ae']:.3f} | {c['dom_ae']:.3f} "
            f"| {c['last_ae']:.3f} | {c['model_ll_own']:.3f} | {c['model_ll_gauss']:.3f} "
            f"| {c['dom_ll']:.3f} | {c['tasks_model_mae_better']}/{c['n_task_reps']} |"
        )
    lines += [
        "",
        "LL: mean log-density of the true final value (accuracy points); the medians are "
        + ", ".join(
            f"{n}: model {c['model_ll_own_median']:.3f} / Domhan {c['dom_ll_median']:.3f}"
            for n, c in s["cuts"].items()
        )
        + ".",
        "",
        f"Decisions at threshold {THRESHOLD} (P(final > best context final) < threshold):",
        "",
        "| curve observed | winners (final > context best) | pruned, model | winners lost, model "
        "| pruned, Domhan | winners lost, Domhan |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in s["cuts"].items():
        lines.append(
            f"| {name} | {c['n_winners']} | {c['model_pruned']:.3f} | {c['model_lost']:.3f} "
            f"| {c['dom_pruned']:.3f} | {c['dom_lost']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--context", type=int, default=20)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tasks", help="comma-separated subset (default: all 34)")
    p.add_argument("--shipped", action="store_true", help="the shipped model, test instances")
    p.add_argument("--model", help="this curve model file instead, on the test instances")
    p.add_argument("--out", type=Path, default=RESULTS / "curve_quality.md")
    args = p.parse_args(argv)
    tasks = args.tasks.split(",") if args.tasks else None
    s = evaluate(
        args.context,
        args.queries,
        args.reps,
        args.seed,
        tasks,
        shipped=args.shipped,
        model_path=args.model,
    )
    rest = sys.argv[1:] if argv is None else list(argv)
    cmd = " ".join(["python -m benchmarks.curve_quality", *rest])
    md = to_markdown(s, cmd)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(md)
    print(md)
    return s


if __name__ == "__main__":
    main()
