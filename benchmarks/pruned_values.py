"""How far a pruned trial's predicted final lies from its true final, under MetaSampler.

MetaSampler learns from a pruned trial through MetaPruner's ``optuna_meta:predicted_final``
(the median of the curve model's predictive distribution). This script measures how good a
value that is: it runs MetaSampler + MetaPruner in the pruner protocol (each task's CV fold
models, as in ``benchmarks.meta_pruner_methods:META_DEFAULT``), and for every trial
MetaPruner stops it compares the prediction with the trial's true epoch-52 value, which the
YAHPO surrogate knows and the pruner does not. Errors are grouped by the epoch the trial
stopped at; ``--shifts`` scores the prediction moved k predicted sds towards worse on the
same pruned trials.

``--sampler-shift K`` (benchmark only) makes the sampler itself learn ``prediction - K sd``
from each pruned trial: the variant tried in session 24 and not adopted
(``benchmarks/README.md``, "Pruned trials' values for MetaSampler").

.. code-block:: bash

    python -m benchmarks.pruned_values                      # the product's sampler
    python -m benchmarks.pruned_values --sampler-shift 0.5  # the variant

Writes ``benchmarks/results/pruned_values_lcbench[_shift<K>].md``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

import optuna_meta.sampler._sampler as sampler_module
from benchmarks._cli import parse_ints
from benchmarks.meta_pruner_methods import META_DEFAULT
from benchmarks.objectives import scored_tasks
from benchmarks.protocol import BenchContext, make_contexts
from benchmarks.pruning import STATE_PRUNED, run_one_pruned
from optuna_meta.pruner import ATTR_PREDICTED_FINAL, ATTR_PREDICTED_FINAL_STD

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STOP_GROUPS = ((1, 3), (4, 8), (9, 20), (21, 51))
"""Epochs a pruned trial stopped at, grouped as the table reports them."""


def shift_pruned_values(shift: float) -> None:
    """Make MetaSampler learn ``prediction - shift * sd`` from a pruned trial (benchmark only).

    The studies here maximise, so lower is worse.
    """
    observed = sampler_module._observed_value

    def shifted(t: FrozenTrial) -> float | None:
        value = observed(t)
        sd = t.user_attrs.get(ATTR_PREDICTED_FINAL_STD)
        if value is None or t.state != TrialState.PRUNED or not isinstance(sd, float):
            return value
        return value - shift * sd if np.isfinite(sd) and sd > 0.0 else value

    sampler_module._observed_value = shifted


def run_one(ctx: BenchContext, epochs: int) -> tuple[list[dict[str, float]], int]:
    """One run of the pruner protocol; each pruned trial's prediction and true final."""
    rows: list[dict[str, float]] = []

    def record(study: optuna.Study, number: int, state: int, curve: np.ndarray) -> None:
        if state != STATE_PRUNED:
            return
        trial = study.trials[number]
        pred = trial.user_attrs.get(ATTR_PREDICTED_FINAL)
        sd = trial.user_attrs.get(ATTR_PREDICTED_FINAL_STD)
        if isinstance(pred, float) and isinstance(sd, float) and np.isfinite([pred, sd]).all():
            stopped = trial.last_step  # a pruned trial has reported at least once
            rows.append({"epoch": stopped, "pred": pred, "sd": sd, "true": float(curve[-1])})

    run = run_one_pruned(ctx, META_DEFAULT.factory, epochs, on_told=record)
    return rows, len(run["trials"])


def report(rows: Sequence[dict[str, float]], shifts: Sequence[float], header: str) -> str:
    ep = np.array([r["epoch"] for r in rows])
    pred = np.array([r["pred"] for r in rows])
    sd = np.array([r["sd"] for r in rows])
    true = np.array([r["true"] for r in rows])
    cols = " | ".join(f"error, shift {k:g} sd" for k in shifts)
    lines = [
        header,
        "",
        "Error = value told minus true final (accuracy points; plus: optimistic), mean over the "
        "pruned trials; z = (prediction - true) / sd.",
        "",
        f"| stopped at epoch | pruned trials | mean sd | mean z | {cols} |",
        "|---|---|---|---|" + "---|" * len(shifts),
    ]
    for lo, hi in STOP_GROUPS:
        m = (ep >= lo) & (ep <= hi)
        if not m.any():
            continue
        z = (pred[m] - true[m]) / sd[m]
        errs = " | ".join(f"{np.mean(pred[m] - k * sd[m] - true[m]):+.2f}" for k in shifts)
        lines.append(
            f"| {lo}-{hi} | {int(m.sum())} | {sd[m].mean():.2f} | {z.mean():.2f} | {errs} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--every", type=int, default=3, help="every k-th task in fold order")
    parser.add_argument("--epochs", type=int, default=2600, help="epoch budget per run")
    parser.add_argument("--sampler-shift", type=float, default=0.0)
    parser.add_argument("--shifts", default="0,0.5,1")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shift = args.sampler_shift
    if shift:
        shift_pruned_values(shift)
    if args.every < 1:
        parser.error(f"--every must be >= 1; got {args.every}")
    contexts = make_contexts(
        "lcbench", scored_tasks("lcbench"), parse_ints(args.seeds), epoch_budget=args.epochs
    )
    tasks = list(dict.fromkeys(c.task for c in contexts))[:: args.every]  # fold order
    chosen = [c for c in contexts if c.task in tasks]
    rows: list[dict[str, float]] = []
    n_trials = []
    t0 = time.perf_counter()
    for ctx in chosen:
        r, n = run_one(ctx, args.epochs)
        rows += r
        n_trials.append(n)
        print(
            f"{ctx.task} seed {ctx.seed}: {n} trials, {len(r)} pruned "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    early = sum(1 for r in rows if r["epoch"] <= 3)
    command = (
        f"python -m benchmarks.pruned_values --seeds {args.seeds} --every {args.every} "
        f"--epochs {args.epochs}" + (f" --sampler-shift {shift:g}" if shift else "")
    )
    told = (
        f"the prediction minus {shift:g} sd (a benchmark-only variant)"
        if shift
        else "the prediction"
    )
    header = (
        f"# Pruned trials' predicted finals against their true finals (MetaSampler + "
        f"MetaPruner; the sampler learns {told} from a pruned trial)\n\n"
        f"{len(chosen)} runs (tasks {', '.join(tasks)}; seeds {args.seeds}; {args.epochs} "
        f"epochs each; each task's CV fold models): {np.mean(n_trials):.1f} trials a run, "
        f"{early / len(chosen):.1f} of them pruned within 3 epochs.\n\nCommand: `{command}`"
    )
    text = report(rows, [float(k) for k in args.shifts.split(",")], header)
    suffix = f"_shift{shift:g}".replace(".", "") if shift else ""
    out = RESULTS_DIR / f"pruned_values_lcbench{suffix}.md"
    out.write_text(text)
    print(text)
    print("wrote", out)


if __name__ == "__main__":
    main()
