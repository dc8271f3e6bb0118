"""Score learned initial designs directly on held-out LCBench tasks (no sampler, no network).

A model's first trials are its learned design (``optuna_meta/surrogate/_design.py``), so their
regret can be measured without running studies: learn the design of each CV fold from the
fold's training tasks (as ``benchmarks.meta_methods.fold_model`` does) and evaluate its entries
on the fold's scored tasks. This compares design settings in minutes, over several design
seeds -- the seed draws the pool and the refinement steps, and one seed's figure can mislead.

Run::

    python -m benchmarks.design_check --starts 1,8 --seeds 0-4

Writes ``benchmarks/results/design_check_lcbench.md``: mean normalised regret of the best of
the first ``n`` design entries, per refinement-start setting and seed, and the mean over seeds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks._cli import parse_ints
from benchmarks.meta_methods import fold_training_tasks
from benchmarks.objectives import scored_tasks
from benchmarks.protocol import make_contexts
from benchmarks.reference import RESULTS_DIR, load_reference, regret_of
from optuna_meta.data import YahpoObjective, load_yahpo
from optuna_meta.surrogate._build import canonical_renames, dataset_design

SCENARIO = "lcbench"
DESIGN_LENGTH = 5
"""Entries scored. The design is greedy, so a longer one (the default learns 10 since session
6) starts with these same entries; 5 keeps the check's cost (about an hour) and its saved
table reproducible."""


def fold_designs(starts: int, seed: int) -> list[tuple[list[str], list[dict]]]:
    """``(scored tasks of the fold, design in LCBench's own names)`` per CV fold.

    The folds and training tasks are the benchmark's own (``make_contexts``,
    ``fold_training_tasks``), so each design is the one that fold's model learns.
    """
    objective = YahpoObjective(SCENARIO)  # refuses the test instances: training tasks only
    folds: dict[int, tuple[tuple[str, ...], list[str]]] = {}
    for ctx in make_contexts(SCENARIO, scored_tasks(SCENARIO), seeds=[0]):
        folds.setdefault(ctx.fold, (ctx.train_tasks, []))[1].append(ctx.task)
    out = []
    for train_tasks, scored in folds.values():
        train = fold_training_tasks(SCENARIO, train_tasks)
        data = load_yahpo(SCENARIO, n_configs=8, tasks=train)  # the space; no values needed
        design = dataset_design(data, objective, length=DESIGN_LENGTH, seed=seed, n_starts=starts)
        own = {canonical: name for name, canonical in canonical_renames(data[0]).items()}
        out.append((scored, [{own.get(k, k): v for k, v in c.items()} for c in design]))
    return out


def score(folds: list[tuple[list[str], list[dict]]]) -> np.ndarray:
    """Regret after 1..DESIGN_LENGTH entries, one row per scored task."""
    objective = YahpoObjective(SCENARIO, exclude_test_instances=False)
    reference = load_reference(SCENARIO)
    rows = []
    for fold, design in folds:
        for task in fold:
            values = np.maximum.accumulate(np.asarray(objective(task, design), dtype=float))
            ref = reference[task]
            rows.append(regret_of(values, ref["max"], ref["min"]))
    return np.asarray(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", default="1,8", help="refinement starts per entry to compare")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "design_check_lcbench.md")
    args = parser.parse_args()
    seeds = parse_ints(args.seeds)
    header = " | ".join(f"@{i + 1}" for i in range(DESIGN_LENGTH))
    lines = [
        "# Learned initial design, scored directly on held-out tasks (LCBench, 5-fold task CV)",
        "",
        f"`python -m benchmarks.design_check --starts {args.starts} --seeds {args.seeds}`",
        "",
        f"| refinement starts | design seed | {header} |",
        "|---|---|" + "---|" * DESIGN_LENGTH,
    ]
    for starts in parse_ints(args.starts):
        per_seed = []
        for seed in seeds:
            t0 = time.perf_counter()
            r = score(fold_designs(starts, seed)).mean(axis=0)
            per_seed.append(r)
            cells = " | ".join(f"{v:.4f}" for v in r)
            lines.append(f"| {starts} | {seed} | {cells} |")
            print(f"starts {starts} seed {seed}: {cells} ({time.perf_counter() - t0:.0f} s)")
        mean = " | ".join(f"**{v:.4f}**" for v in np.mean(per_seed, axis=0))
        lines.append(f"| {starts} | mean | {mean} |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
