"""Designs whose second entry alone hedges for short runs (session 29; the default since).

Why: from session 22 to 28 the default ``lcbench-mlp`` learned its first design entry at
LCBench's final epoch and every later entry, and the training tasks' optima, at epochs 5 and
52 together, and tried the second entry second (``design_fixed_trials``). On real PyTorch runs
the second entry is what puts MetaSampler ahead of TPE from trial 2; the rest of the hedge cost
0.002-0.005 regret on LCBench from 3 to 20 trials, and the held-out @10 target
(``benchmarks/README.md``, "A design that hedges for short runs"). With ``n_hedging=1`` only
the second entry serves both epochs; entries 3-10 are learned at epoch 52 alone, given the
first two, and with ``optima_at_first_budget`` the optima too. Both together became the
shipped recipe (``optuna-meta train ... --design-hedging 1``, ``meta_methods.DESIGN_HEDGING``).

Measured with the same networks (only the design and the task optima, which exclude the
design's entries, are learned again):

* 5-fold task CV: ``meta_methods.SAMPLER_METHODS`` (the default) against ``HEDGE_ALL``
  (sessions 22-28) and ``DESIGN_HEDGING_VARIANTS`` (each half alone);
* held-out instances before the change: the shipped network with each variant's design
  (:func:`shipped_variant`, cached under ``benchmarks/results/cache/``), :func:`heldout`;
* real runs: ``python -m benchmarks.real_mlp --methods meta --out benchmarks/results/hedge1``
  (first run as a variant method with :func:`shipped_variant`, the model shipped since).

.. code-block:: bash

    python -m benchmarks.run_samplers --scenario lcbench --full --no-report \\
        --extra benchmarks.meta_methods:HEDGE_ALL
    python -m benchmarks.hedge_one --heldout   # -> results/heldout_lcbench_hedge1.md
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._cli import parse_ints
from benchmarks.meta_methods import disk_cached
from benchmarks.protocol import Method, run_method
from benchmarks.report import (
    RESULTS_DIR,
    load_results,
    peer_results_on,
    sampler_summary,
    sampler_tables_md,
)
from optuna_meta import MetaSampler
from optuna_meta.data import TEST_INSTANCES, load_yahpo, yahpo_objective
from optuna_meta.surrogate import SurrogateModel
from optuna_meta.surrogate._build import dataset_design, learn_task_optima
from optuna_meta.surrogate._design import N_REFINE_STARTS, N_TASK_OPTIMUM_STARTS

SHIPPED = "lcbench-mlp"
BUDGETS = (5.0, 52.0)
"""The shipped recipe's design budgets (``--design-budgets 5,52 --design-first-budget 52``)."""


def shipped_variant(
    n_hedging: int | None = 1, optima_at_first_budget: bool = False
) -> SurrogateModel:
    """The shipped ``lcbench-mlp`` with its design (and task optima) learned again with
    ``n_hedging`` (and the optima at the final epoch alone with ``optima_at_first_budget``);
    ``None`` and ``False`` give the shipped recipe (a check that the rest is the same)."""
    shipped = SurrogateModel.load(SHIPPED)
    tasks = [str(t).rsplit("/", 1)[-1] for t in shipped.manifest["training_tasks"]]
    design_seed = int(shipped.manifest["train_config"]["seed"])

    def build(digest: str) -> SurrogateModel:
        space_only = load_yahpo("lcbench", n_configs=8, tasks=tasks)
        objective = yahpo_objective("lcbench", budgets=BUDGETS)
        design = dataset_design(
            space_only,
            objective,
            length=len(shipped.initial_design),
            seed=design_seed,
            first_budget=-1,
            n_hedging=n_hedging,
        )
        optima = learn_task_optima(
            space_only,
            objective,
            seed=design_seed,
            exclude=design,
            budget=-1 if optima_at_first_budget else None,
        )
        manifest = {**shipped.manifest, "name": f"{SHIPPED}-hedging{n_hedging}-{digest}"}
        return dataclasses.replace(
            shipped,
            initial_design=design,
            task_optima=optima,
            defaults={**shipped.defaults, **design[0]},
            manifest=manifest,
        )

    key = [SHIPPED, shipped.manifest["created"], n_hedging, N_REFINE_STARTS, N_TASK_OPTIMUM_STARTS]
    if optima_at_first_budget:  # the key of the n_hedging-only variant stays as it was
        key.append("optima_at_first_budget")
    return disk_cached("shipped_hedging", key, SurrogateModel.load, build)


VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "meta_shipped_hedge1": ({"n_hedging": 1}, "n_hedging=1"),
    "meta_shipped_hedge1_optimafinal": (
        {"n_hedging": 1, "optima_at_first_budget": True},
        "n_hedging=1, task optima at the final epoch",
    ),
}
"""The variants scored on the held-out instances: :func:`shipped_variant`'s arguments."""


def heldout(seeds: list[int], n_trials: int = 100, out: Path = RESULTS_DIR) -> str:
    """The variants' shipped models on YAHPO's held-out LCBench instances, beside the shipped
    model's runs (``python -m benchmarks.heldout``) and the peers; writes
    ``results/heldout_lcbench_hedge1.md``."""
    tasks = list(TEST_INSTANCES["lcbench"])
    variant_dir = out / "hedge1" / "heldout"
    for name, (kwargs, shown) in VARIANTS.items():
        model = shipped_variant(**kwargs)
        method = Method(
            name,
            lambda ctx, model=model: MetaSampler(model=model, seed=ctx.seed),
            label=f"MetaSampler (shipped network, design with {shown}; session 29 variant)",
        )
        run_method(method, "lcbench", tasks, seeds, n_trials, out_dir=variant_dir, n_folds=0)
    results = load_results(variant_dir, "sampler", "lcbench")
    results += load_results(out / "heldout", "sampler", "lcbench")
    results += peer_results_on(out, "sampler", "lcbench", tasks)
    text = (
        f"# Held-out LCBench instances ({', '.join(tasks)}): designs whose second entry alone "
        "hedges (session 29 variants)\n\n"
        "The variants are the shipped `lcbench-mlp` network with its design and task optima "
        "learned again (`benchmarks/hedge_one.py`); the other rows are "
        "`results/heldout_lcbench.md`'s runs.\n\n"
        + sampler_tables_md(sampler_summary(results, "lcbench"))
        + f"\nCommand: `python -m benchmarks.hedge_one --heldout --seeds "
        f"{seeds[0]}-{seeds[-1]}`\n"
    )
    (out / "heldout_lcbench_hedge1.md").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", action="store_true", help="score the held-out instances")
    parser.add_argument("--seeds", default="0-4")
    args = parser.parse_args(argv)
    if args.heldout:
        print(heldout(parse_ints(args.seeds)))


if __name__ == "__main__":
    main()
