"""The shipped MetaPruner curve model on YAHPO's held-out LCBench test instances.

The shipped ``lcbench-curve`` model (and the shipped ``lcbench-mlp`` surrogate) never saw
YAHPO's test instances (167168, 189873, 189906), so they are scored on them directly, without
task cross-validation. This script runs, in the pruner protocol (5200 epochs, every trial
reports each epoch), the defaults a user gets:

* ``TPESampler`` + ``MetaPruner()`` (seeds 0-2) and ``RandomSampler`` + ``MetaPruner()``
  (seed 0), beside the saved full-protocol runs of TPE/Random with no pruning and with every
  Optuna pruner on the same tasks and seeds;
* ``MetaSampler()`` with no pruning and with ``MetaPruner()`` (seeds 0-2).

``--curve-model PATH`` adds ``TPESampler`` + ``MetaPruner(model=PATH)`` (seeds as given), e.g.
for a model that ``optuna-meta train-curve`` wrote from past studies (its manifest must not
list a test instance among its training tasks).

Run::

    python -m benchmarks.heldout_pruner
    python -m benchmarks.heldout_pruner --curve-model my_curves.npz
    python -m benchmarks.heldout_pruner --seeds 0-11 --peers-from \
        benchmarks/results/seeds3-5,benchmarks/results/seeds6-8,benchmarks/results/seeds9-11

Writes ``benchmarks/results/heldout/raw/pruner_lcbench_*.json`` (git-ignored) and
``benchmarks/results/heldout_pruner_lcbench.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from optuna.pruners import NopPruner
from optuna.samplers import RandomSampler, TPESampler

from benchmarks._cli import parse_ints, parse_list
from benchmarks.meta_methods import SAMPLER_BEHAVIOUR
from benchmarks.meta_pruner_methods import curve_model_tasks
from benchmarks.pruning import PrunerMethod, run_pruner_method
from benchmarks.report import (
    RESULTS_DIR,
    load_results,
    peer_results_on,
    pruner_summary,
    pruner_table_md,
)
from optuna_meta import MetaPruner, MetaSampler
from optuna_meta.curve import CurveModel
from optuna_meta.data import TEST_INSTANCES

SCENARIO = "lcbench"

METHODS = [
    PrunerMethod(
        "tpe_meta_shipped",
        lambda ctx: (TPESampler(seed=ctx.seed), MetaPruner()),
        label="TPE + MetaPruner() (shipped lcbench-curve)",
        baseline="tpe_nop",
    ),
    PrunerMethod(
        "random_meta_shipped",
        lambda ctx: (RandomSampler(seed=ctx.seed), MetaPruner()),
        label="Random + MetaPruner() (shipped lcbench-curve)",
        baseline="random_nop",
        seeds=(0,),
    ),
    PrunerMethod(
        "metasampler_nop_shipped",
        lambda ctx: (MetaSampler(seed=ctx.seed), NopPruner()),
        label="MetaSampler() (shipped lcbench-mlp) + NopPruner",
        version=f"sampler{SAMPLER_BEHAVIOUR}",
    ),
    PrunerMethod(
        "metasampler_meta_shipped",
        lambda ctx: (MetaSampler(seed=ctx.seed), MetaPruner()),
        label="MetaSampler() + MetaPruner() (both shipped)",
        baseline="metasampler_nop_shipped",
        version=f"sampler{SAMPLER_BEHAVIOUR}",
    ),
]


def curve_model_method(path: Path) -> PrunerMethod:
    """``TPESampler`` + ``MetaPruner(model=path)``; refuses a model trained on a test instance."""
    model = CurveModel.load(path)
    seen = sorted(curve_model_tasks(model) & set(TEST_INSTANCES[SCENARIO]))
    if seen:
        raise SystemExit(f"error: {path} was trained on the test instances {seen}")
    name = str(model.manifest.get("name", path.stem))
    return PrunerMethod(
        "tpe_meta_" + name.replace("-", "_"),
        lambda ctx: (TPESampler(seed=ctx.seed), MetaPruner(model)),
        label=f"TPE + MetaPruner(model={name!r})",
        baseline="tpe_nop",
    )


def merged_peers(
    dirs: list[Path], tasks: list[str], seeds: set[int], epochs: int
) -> list[dict[str, Any]]:
    """Each Optuna peer's saved runs on ``tasks`` and ``seeds``, joined across ``dirs`` (a
    run found twice counts once), labelled with the seeds they cover."""
    merged: dict[str, dict[str, Any]] = {}
    for d in dirs:
        for r in peer_results_on(d, "pruner", SCENARIO, tasks, epoch_budget=epochs):
            runs = [run for run in r["runs"] if int(run["seed"]) in seeds]
            if not runs:
                continue
            into = merged.setdefault(r["method"], {**r, "runs": []})
            have = {(run["task"], int(run["seed"])) for run in into["runs"]}
            into["runs"] += [run for run in runs if (run["task"], int(run["seed"])) not in have]
    for r in merged.values():
        r["seeds"] = sorted({int(run["seed"]) for run in r["runs"]})
    return list(merged.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--epochs", type=int, default=5200)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--curve-model", type=Path, help="also TPE + MetaPruner(model=this)")
    parser.add_argument(
        "--peers-from",
        default="",
        help="comma-separated result folders whose peer runs join --out's (e.g. the "
        "full-protocol runs of other seeds: benchmarks/results/seeds3-5,...)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the table from the saved runs"
    )
    args = parser.parse_args()
    tasks = list(TEST_INSTANCES[SCENARIO])
    heldout_dir = args.out / "heldout"
    methods = [] if args.report_only else list(METHODS)
    if args.curve_model is not None and not args.report_only:
        methods.append(curve_model_method(args.curve_model))
    for method in methods:
        run_pruner_method(
            method,
            tasks,
            parse_ints(args.seeds),
            epoch_budget=args.epochs,
            out_dir=heldout_dir,
            scenario=SCENARIO,
            n_folds=0,
            verbose=True,
            resume=False,  # the shipped models change between sessions: never reuse old runs
        )
    seeds = set(parse_ints(args.seeds))
    results = load_results(heldout_dir, "pruner", SCENARIO)
    peer_dirs = [args.out] + [Path(d) for d in parse_list(args.peers_from) or []]
    results += merged_peers(peer_dirs, tasks, seeds, args.epochs)
    summary = pruner_summary(results, SCENARIO)
    text = (
        "Held-out YAHPO test instances of LCBench (167168, 189873, 189906), pruner protocol "
        f"({args.epochs} epochs; regret of the best completed trial). MetaPruner and "
        "MetaSampler use the shipped models (trained without these tasks); the Optuna rows are "
        "their full-protocol runs on the same tasks and seeds.\n\n" + pruner_table_md(summary)
    )
    extra = f" --curve-model {args.curve_model}" if args.curve_model is not None else ""
    extra += f" --peers-from {args.peers_from}" if args.peers_from else ""
    text += f"\nCommand: `python -m benchmarks.heldout_pruner --seeds {args.seeds}{extra}`\n"
    (args.out / "heldout_pruner_lcbench.md").write_text(text)
    (args.out / "heldout_pruner_lcbench_summary.json").write_text(json.dumps(summary, indent=1))
    print(text)


if __name__ == "__main__":
    main()
