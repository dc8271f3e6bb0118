"""MetaPruner on a constrained study: LCBench epochs under a training-time budget.

Why: with Optuna 5 constraints ``study.best_trial`` is the best *feasible* trial, so a pruner
that compares a running trial with infeasible completed ones stops trials that could still
become the best feasible one. MetaPruner takes its target among feasible completed trials;
this benchmark measures that against the same pruner blind to feasibility.

Protocol: the pruner protocol (``benchmarks/pruning.py``: 34 LCBench tasks, 5-fold task CV
curve models, 5200 epochs a run) with ``benchmarks/constrained.py``'s budget: a completed
trial sets ``trial.set_constraint`` with its predicted training time minus the task's
:data:`~benchmarks.constrained.TIME_QUANTILE` quantile, as a user does with a quantity known
at the end of training (pruned trials set none). Score: regret of the best feasible
completed trial after 520 / 1040 / 2600 / 5200 epochs, normalised as in
``benchmarks/constrained.py`` (1 while none). Methods, all with TPE (which reads the
constraint): no pruning, ``MetaPruner()``, and ``MetaPruner()`` blind to feasibility (its
target taken among all completed trials, as before session 13).

Run (about 5 minutes on two cores with ``--seeds 0-2``):
    .. code-block:: bash

        python -m benchmarks.constrained_pruning --seeds 0-2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._cli import parse_ints, parse_methods
from benchmarks.constrained import RESULTS_DIR, TIME_QUANTILE, task_setting
from benchmarks.objectives import get_surrogate, scored_tasks
from benchmarks.protocol import BenchContext, make_contexts, quiet_optuna
from benchmarks.pruning import STATE_COMPLETE, run_one_pruned
from optuna_meta import MetaPruner

SCENARIO = "lcbench"
EPOCH_BUDGET = 5200
BUDGETS = (520, 1040, 2600, 5200)


class _BlindMetaPruner(MetaPruner):
    """MetaPruner whose target ignores feasibility (every completed trial counts)."""

    def _context(self, study: Any, sign: float, step: float | None = None) -> Any:
        found = super()._context(study, sign, step)
        return None if found is None else found._replace(targets=found.ctx.finals)


def _factory(method: str) -> Any:
    from benchmarks.meta_pruner_methods import fold_curve_model

    def factory(
        ctx: BenchContext,
    ) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
        sampler = optuna.samplers.TPESampler(seed=ctx.seed)
        if method == "tpe_nop":
            return sampler, optuna.pruners.NopPruner()
        key = ("curve-model", ctx.train_tasks)
        if key not in ctx.cache:
            ctx.cache[key] = fold_curve_model(ctx.train_tasks)
        cls = MetaPruner if method == "tpe_meta" else _BlindMetaPruner
        return sampler, cls(ctx.cache[key])

    return factory


METHODS = ("tpe_nop", "tpe_meta", "tpe_meta_blind")


def regret_at(run: dict[str, Any], budgets: tuple[int, ...] = BUDGETS) -> np.ndarray:
    """Normalised regret of the best feasible completed trial after each epoch budget."""
    _, top, worst = task_setting(run["task"], TIME_QUANTILE, SCENARIO)
    tr = np.asarray(run["trials"], dtype=float).reshape(-1, 3)
    cum = np.cumsum(tr[:, 0])
    ok = (tr[:, 1] == STATE_COMPLETE) & np.asarray(run["feasible"], dtype=bool)
    out = np.ones(len(budgets))
    for i, e in enumerate(budgets):
        sel = ok & (cum <= e)
        if sel.any():
            best = float(tr[sel, 2].max())
            t = max(top, best)
            out[i] = min(max((t - best) / (t - worst), 0.0), 1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    quiet_optuna()
    methods = parse_methods(parser, args.methods, METHODS)
    surrogate = get_surrogate(SCENARIO)
    contexts = make_contexts(
        SCENARIO, scored_tasks(SCENARIO), parse_ints(args.seeds), epoch_budget=EPOCH_BUDGET
    )
    runs: dict[str, list[dict[str, Any]]] = {}
    for m in methods:
        t0 = time.perf_counter()
        runs[m] = []
        for ctx in contexts:
            budget, _, _ = task_setting(ctx.task, TIME_QUANTILE, SCENARIO)

            def constraint(
                params: dict[str, Any], task: str = ctx.task, b: float = budget
            ) -> float:
                return float(surrogate.evaluate(task, [params], outputs=["time"])["time"][0]) - b

            runs[m].append(run_one_pruned(ctx, _factory(m), EPOCH_BUDGET, constraint))
        print(f"== {m} done in {time.perf_counter() - t0:.1f}s", flush=True)
    (args.out / "raw").mkdir(parents=True, exist_ok=True)
    raw = args.out / "raw" / f"constrained_pruning_{SCENARIO}.json"
    raw.write_text(json.dumps({"runs": runs}, separators=(",", ":")))
    text = report(runs, f"python -m benchmarks.constrained_pruning --seeds {args.seeds}")
    (args.out / f"constrained_pruning_{SCENARIO}.md").write_text(text)
    print(text)


def report(runs: dict[str, list[dict[str, Any]]], command: str) -> str:
    """The markdown table of ``runs`` (method -> runs) with paired differences."""
    R = {m: np.array([regret_at(r) for r in rs]) for m, rs in runs.items()}
    lines = [
        "Constrained LCBench pruner protocol (`time` <= the task's 25% quantile, set when a "
        "trial completes), TPE, regret of the best feasible completed trial; 5-fold task CV.",
        "",
        "| method | runs | " + " | ".join(f"@{b}ep" for b in BUDGETS) + " | trials/run |",
        "|---" * (len(BUDGETS) + 3) + "|",
    ]
    for m, A in R.items():
        n_trials = np.mean([len(r["trials"]) for r in runs[m]])
        cells = " | ".join(f"{v:.4f}" for v in A.mean(axis=0))
        lines.append(f"| {m} | {len(A)} | {cells} | {n_trials:.1f} |")
    if "tpe_meta" in R:
        lines += ["", "Paired, tpe_meta minus the other, mean (se):", ""]
        for m, A in R.items():
            if m != "tpe_meta" and A.shape == R["tpe_meta"].shape:
                D = R["tpe_meta"] - A
                se = D.std(axis=0, ddof=1) / np.sqrt(len(D))
                cells = " / ".join(
                    f"{d:+.4f} ({e:.4f})" for d, e in zip(D.mean(0), se, strict=True)
                )
                lines.append(f"- minus {m}: {cells}")
    lines += ["", f"Command: `{command}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
