"""The shipped MetaSampler model on YAHPO's held-out LCBench test instances.

The shipped ``lcbench-mlp`` model never saw YAHPO's test instances (167168, 189873, 189906), so
it can be scored on them directly, without task cross-validation. This script runs the default
``MetaSampler()`` (the model a user gets) on those tasks, seeds 0-4, 100 trials, through the
same sampler protocol, and writes a table that puts it beside every peer's runs on the same
tasks and seeds (taken from the saved full-protocol results).

Run::

    python -m benchmarks.heldout

Writes ``benchmarks/results/heldout/raw/sampler_lcbench_meta_shipped.json`` (git-ignored) and
``benchmarks/results/heldout_lcbench.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks._cli import parse_ints
from benchmarks.protocol import BenchContext, Method, run_method
from benchmarks.report import (
    RESULTS_DIR,
    load_results,
    peer_results_on,
    sampler_summary,
    sampler_tables_md,
)
from optuna_meta import MetaSampler
from optuna_meta.data import TEST_INSTANCES

SCENARIO = "lcbench"


def _shipped(ctx: BenchContext) -> MetaSampler:
    return MetaSampler(seed=ctx.seed)  # the default model: trained without these tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--n-trials", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    tasks = list(TEST_INSTANCES[SCENARIO])
    method = Method("meta_shipped", _shipped, label="MetaSampler (shipped lcbench-mlp)")
    heldout_dir = args.out / "heldout"
    run_method(
        method,
        SCENARIO,
        tasks,
        parse_ints(args.seeds),
        args.n_trials,
        out_dir=heldout_dir,
        n_folds=0,
        verbose=True,
        resume=False,
    )
    results = load_results(heldout_dir, "sampler", SCENARIO)
    results += peer_results_on(args.out, "sampler", SCENARIO, tasks)
    summary = sampler_summary(results, SCENARIO)
    text = (
        "Held-out YAHPO test instances of LCBench (167168, 189873, 189906), normalised regret "
        "as in the main table. MetaSampler uses the shipped model (trained on the other 31 "
        "tasks); peers are their full-protocol runs on the same tasks and seeds. The portfolio "
        "rows are CV portfolios built without the scored task.\n\n" + sampler_tables_md(summary)
    )
    text += f"\nCommand: `python -m benchmarks.heldout --seeds {args.seeds} --n-trials "
    text += f"{args.n_trials}`\n"
    (args.out / "heldout_lcbench.md").write_text(text)
    (args.out / "heldout_lcbench_summary.json").write_text(json.dumps(summary, indent=1))
    print(text)


if __name__ == "__main__":
    main()
