"""Where a curve model's point predictions miss on YAHPO's held-out LCBench instances.

Why: from session 27 the shipped curve model's mean absolute error from 20 % of the curve on
the test instances rose from 3.52 to 4.21 accuracy points (``benchmarks/curve_quality.py``),
behind the Domhan ensemble. This script splits that error by task, and within a task by
whether the trial stays near chance (its final within ``CHANCE_SHARE`` of the task's range
above the worst final) or learns, with the signed error (prediction minus final), for the
models given. Queries as in ``curve_quality``: per task and repetition 20 random
configurations as the completed trials and 100 others cut at 10 % and 20 % of the curve.

Run (the shipped model against the 45-input one of sessions 7-26, from git)::

    git show 51cd009~1:optuna_meta/models/lcbench-curve.npz > /tmp/curve45.npz
    python -m benchmarks.heldout_errors --models lcbench-curve,/tmp/curve45.npz

Prints a markdown table (``--out`` writes it too; ``results/heldout_errors_lcbench.md``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks._cli import write_report
from benchmarks.curve_quality import STEPS
from benchmarks.meta_pruner_methods import CURVES_CACHE, N_CONFIGS, curve_model_tasks
from benchmarks.objectives import scored_tasks
from optuna_meta.curve import CurveModel, StudyContext, build_context, featurize
from optuna_meta.curve._train import lcbench_curves
from optuna_meta.data import TEST_INSTANCES

CUTS = {"10%": 5, "20%": 10}
CHANCE_SHARE = 0.1
"""A final within this share of the task's range (over its 2000 curves) above the worst one
counts as staying near chance."""


def stuck_level(finals: np.ndarray) -> float:
    """Finals below this stay near chance (:data:`CHANCE_SHARE` of the range above the worst)."""
    return float(finals.min() + CHANCE_SHARE * (finals.max() - finals.min()))


def sample_study(
    V: np.ndarray, rng: np.random.Generator, n_context: int, n_queries: int
) -> tuple[StudyContext, np.ndarray]:
    """A study of ``n_context`` random curves of ``V`` (rows; epochs 1..52) as completed
    trials, and the rows of ``n_queries`` others to predict."""
    perm = rng.permutation(len(V))
    c, q = perm[:n_context], perm[n_context : n_context + n_queries]
    ctx = build_context([(STEPS, V[i]) for i in c], V[c, -1], 1.0)
    assert ctx is not None
    return ctx, q


def errors(
    models: Sequence[str], n_context: int = 20, n_queries: int = 100, n_reps: int = 10
) -> str:
    """The markdown table: per model, cut, task and group, MAE and mean signed error."""
    nets = []
    for m in models:
        model = CurveModel.load(m)
        if curve_model_tasks(model) & set(TEST_INSTANCES["lcbench"]):
            raise SystemExit(f"error: {m} was trained on a test instance")
        nets.append(model.network())
    curves = lcbench_curves(scored_tasks("lcbench"), N_CONFIGS, 0, CURVES_CACHE)
    rng = np.random.default_rng(0)
    rows: dict[tuple, list[np.ndarray]] = {}
    for cut_name, cut in CUTS.items():
        for task in TEST_INSTANCES["lcbench"]:
            V = curves[task].astype(np.float64)
            finals = V[:, -1]
            for _ in range(n_reps):
                ctx, q = sample_study(V, rng, n_context, n_queries)
                X = np.stack([featurize(ctx, STEPS[:cut], V[i, :cut]) for i in q])
                stuck = finals[q] < stuck_level(finals)
                for name, net in zip(models, nets, strict=True):
                    mu, _ = net.predict(X[:, : net.n_inputs])
                    err = ctx.to_user(mu) - finals[q]
                    for group, sel in (("stays near chance", stuck), ("learns", ~stuck)):
                        rows.setdefault((name, cut_name, task, group), []).append(err[sel])
    return signed_error_table(rows, "task")


def signed_error_table(rows: dict[tuple[str, str, str, str], list[np.ndarray]], where: str) -> str:
    """Markdown: per (model, cut, ``where``, group) key, predictions, MAE and mean signed error."""
    lines = [
        f"| model | cut | {where} | group | predictions | MAE | mean signed error |",
        "|---|---|---|---|---|---|---|",
    ]
    for (name, cut_name, place, group), parts in rows.items():
        e = np.concatenate(parts)
        if len(e):
            lines.append(
                f"| {name} | {cut_name} | {place} | {group} | {len(e)} | "
                f"{np.abs(e).mean():.2f} | {e.mean():+.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="lcbench-curve", help="comma-separated")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    intro = (
        "Signed errors (prediction minus final, accuracy points) of curve models' point "
        "predictions on YAHPO's held-out LCBench instances, by task and by whether the trial "
        "stays near chance (final within 10 % of the task's range above its worst) or learns; "
        f"20 random completed trials as context, 100 queries, {args.reps} repetitions per "
        "task."
    )
    table = errors(args.models.split(","), n_reps=args.reps)
    write_report(intro, table, "benchmarks.heldout_errors", argv, args.out)


if __name__ == "__main__":
    main()
