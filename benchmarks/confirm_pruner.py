"""Real curves: why MetaPruner trails MedianPruner with TPE, and a confirmation rule tried.

On real PyTorch curves (``benchmarks/real_mlp_pruning.py``, 30 runs) TPE + MetaPruner is
behind TPE + MedianPruner from 400 epochs. :func:`shadow_decisions` looks at why: it runs TPE
without pruning on those curves and, at every report, asks both pruners what they would
decide (their decisions do not stop anything), so every trial's true final is known and each
rule's mistakes can be counted: trials it would stop that end among the run's best three, or
above the best value the study had when they started.

The variant, :class:`ConfirmPruner`: MetaPruner that stops a trial only when its rule said
"prune" at two consecutive checks of that trial (a noisy dip in one report no longer
suffices; a NaN or infinite report still prunes at once). It is measured on the real curves
(``real_mlp_pruning``'s ``meta_confirm2`` row) and on LCBench (``TPE_CONFIRM2``). The
previous decision is kept in the pruner object, so this development version serves
single-process studies only.

Run::

    python -m benchmarks.confirm_pruner --seeds 0-4  # the shadow decisions of RULES
    python -m benchmarks.real_mlp_pruning --seeds 0-9 --pruners meta_confirm2 \\
        --out benchmarks/results/seeds0-9
    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.confirm_pruner:TPE_CONFIRM2

The results are in ``benchmarks/README.md``, "Real curves: MetaPruner's mistakes".
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.pruners import BasePruner, MedianPruner
from optuna.study import Study
from optuna.trial import FrozenTrial

from benchmarks._cli import parse_ints
from benchmarks.meta_pruner_methods import meta_pruner_method
from optuna_meta import MetaPruner

RULES = ("median", "meta", "meta_gaussian")
"""MedianPruner(), MetaPruner() and MetaPruner(calibrated=False) (the network's Gaussian tail
instead of the calibrated one: does the heavy early tail hold MetaPruner back?)."""
TOP = 3
"""A stopped trial that would have ended among the run's best ``TOP`` is a lost winner."""


class ConfirmPruner(MetaPruner):
    """MetaPruner that prunes only when its rule also said so at the trial's previous check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._said_prune: dict[tuple[int, int], bool] = {}

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        key = (id(study._storage), trial._trial_id)
        decision = super().prune(study, trial)
        before = self._said_prune.get(key, False)
        self._said_prune[key] = decision
        if not decision:
            return False
        if not math.isfinite(trial.intermediate_values[trial.last_step]):
            return True
        return before


TPE_CONFIRM2 = meta_pruner_method(
    "tpe_meta_confirm2",
    "TPE + MetaPruner() [prunes after two consecutive checks say so; session 25 variant, "
    "not adopted; 5-fold task CV]",
    pruner_class=ConfirmPruner,
)


class _Shadow(BasePruner):
    """Never prunes; records what MedianPruner and MetaPruner would decide at each report."""

    def __init__(self, log: list[dict[str, Any]]) -> None:
        self.rules = {
            "median": MedianPruner(),
            "meta": MetaPruner(),
            "meta_gaussian": MetaPruner(calibrated=False),
        }
        self.log = log

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        row: dict[str, Any] = {"n": trial.number, "step": trial.last_step}
        for name, rule in self.rules.items():
            row[name] = bool(rule.prune(study, trial))
        self.log.append(row)
        return False


def shadow_decisions(datasets: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """TPE runs without pruning on real curves, with the :data:`RULES`' shadow decisions logged."""
    from benchmarks.real_mlp_pruning import logged_runs

    return logged_runs(list(datasets), list(seeds), _Shadow)


def mistakes(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per rule: trials it would stop a run, epochs it would save, and its lost winners."""
    out: dict[str, dict[str, float]] = {}
    for rule in RULES:
        stopped, saved, lost_top, lost_improvers, at_one = 0, 0.0, 0, 0, 0
        for r in runs:
            finals = np.array([t[2] for t in r["trials"]], dtype=float)
            n_epochs = max(int(t[0]) for t in r["trials"])
            first: dict[int, int] = {}
            for row in r["log"]:
                if row.get(rule, False) and row["n"] not in first:
                    first[row["n"]] = int(row["step"])
            for n, step in first.items():
                stopped += 1
                at_one += step == 1
                saved += n_epochs - step
                lost_top += int((finals > finals[n]).sum()) < TOP
                lost_improvers += bool(n == 0 or finals[n] >= finals[:n].max())
        k = max(len(runs), 1)
        out[rule] = {
            "stopped": stopped / k,
            "at_epoch_1": at_one / k,
            "epochs_saved": saved / k,
            "lost_top": lost_top,
            "lost_improvers": lost_improvers,
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    from benchmarks import real_mlp_pruning as rmp

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--datasets", default=",".join(rmp.DEFAULT_DATASETS))
    args = parser.parse_args(argv)
    names = rmp.parse_datasets(parser, args.datasets)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = shadow_decisions(names, parse_ints(args.seeds))
    for rule, m in mistakes(runs).items():
        print(
            f"{rule}: would stop {m['stopped']:.1f} trials a run ({m['at_epoch_1']:.1f} at epoch "
            f"1), saving {m['epochs_saved']:.0f} epochs; stopped trials that end in a run's "
            f"top {TOP}: {m['lost_top']}; that would have beaten the study's best so far: "
            f"{m['lost_improvers']} ({len(runs)} runs)"
        )


if __name__ == "__main__":
    main()
