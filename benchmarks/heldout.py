"""A shipped MetaSampler model on YAHPO's held-out test instances of its scenario.

The shipped models never saw YAHPO's test instances (``lcbench-mlp``: LCBench 167168, 189873,
189906; ``rbv2-xgboost``: rbv2_xgboost 12, 1501, 16, 40499), so they can be scored on them
directly, without task cross-validation. This script runs ``MetaSampler(model=...)`` with the
scenario's shipped model (for LCBench the default a user gets) on those tasks, seeds 0-4, 100
trials, through the same sampler protocol, and writes a table that puts it beside every peer's
runs on the same tasks and seeds (taken from the saved full-protocol results).

Run::

    python -m benchmarks.heldout                           # LCBench
    python -m benchmarks.heldout --scenario rbv2_xgboost
    python -m benchmarks.heldout --model lcbench-mlp-short # another shipped model

Writes ``benchmarks/results/heldout/raw/sampler_<scenario>_meta_shipped[_<model>].json``
(git-ignored) and ``benchmarks/results/heldout_<scenario>[_<model>].md``; each table shows
every shipped model run so far beside the peers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
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
from optuna_meta.surrogate import shipped_models

SHIPPED_MODEL = {"lcbench": "lcbench-mlp", "rbv2_xgboost": "rbv2-xgboost"}
"""The shipped model of each scenario (trained without its test instances)."""


def _shipped(model: str) -> Callable[[BenchContext], MetaSampler]:
    return lambda ctx: MetaSampler(model=model, seed=ctx.seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="lcbench", choices=sorted(SHIPPED_MODEL))
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--n-trials", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--model", help="another shipped model of the scenario (default: the scenario's own)"
    )
    args = parser.parse_args()
    scenario = args.scenario
    tasks = list(TEST_INSTANCES[scenario])
    model = args.model or SHIPPED_MODEL[scenario]
    if model not in shipped_models("optuna-meta/surrogate"):
        parser.error(
            f"unknown model {model!r}; shipped: {shipped_models('optuna-meta/surrogate')}"
        )
    own = model == SHIPPED_MODEL[scenario]
    name = "meta_shipped" if own else f"meta_shipped_{model.replace('-', '_')}"
    method = Method(name, _shipped(model), label=f"MetaSampler (shipped {model})")
    heldout_dir = args.out / "heldout"
    run_method(
        method,
        scenario,
        tasks,
        parse_ints(args.seeds),
        args.n_trials,
        out_dir=heldout_dir,
        n_folds=0,
        verbose=True,
        resume=False,
    )
    results = load_results(heldout_dir, "sampler", scenario)
    results += peer_results_on(args.out, "sampler", scenario, tasks)
    summary = sampler_summary(results, scenario)
    text = (
        f"Held-out YAHPO test instances of {scenario} ({', '.join(tasks)}), normalised regret "
        f"as in the main table. MetaSampler uses the shipped model {model} (trained on the "
        "scenario's other tasks); peers are their full-protocol runs on the same tasks and "
        "seeds. The portfolio rows are CV portfolios built without the scored task.\n\n"
        + sampler_tables_md(summary)
    )
    flag = "" if scenario == "lcbench" else f"--scenario {scenario} "
    flag += "" if own else f"--model {model} "
    text += f"\nCommand: `python -m benchmarks.heldout {flag}--seeds {args.seeds} --n-trials "
    text += f"{args.n_trials}`\n"
    stem = f"heldout_{scenario}" if own else f"heldout_{scenario}_{model}"
    (args.out / f"{stem}.md").write_text(text)
    (args.out / f"{stem}_summary.json").write_text(json.dumps(summary, indent=1))
    print(text)


if __name__ == "__main__":
    main()
