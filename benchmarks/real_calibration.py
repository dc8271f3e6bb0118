"""Real curves: is MetaPruner's probability of improvement calibrated?

Why: MetaPruner stops a trial when its predicted probability of ending above the target (the
``top_k``-th best completed final, capped at the median) falls below ``threshold``. Those
probabilities come from a curve model meta-trained on LCBench's surrogate curves; this
benchmark checks them on real PyTorch curves (``benchmarks/real_mlp.py``), where every
trial's true final is known: TPE runs without pruning, and at every report each model's
prediction (:meth:`MetaPruner.predict`) and the target at that moment are logged. Checks are
grouped by the epochs seen and by the predicted probability; a calibrated model's realised
share of trials ending above their target equals its mean prediction in every group.

Models (:data:`MODELS`): the shipped one, the session-26 variant trained as it is with
unstable curves too (``benchmarks.noisy_curves``) and the shipped one recalibrated on the
study's own completed curves (``benchmarks.recal_pruner``). Session 26's ``rank`` variant is
the shipped model since session 27 (its rows in ``results/real_calibration.md`` are kept).

Run (about 12 minutes on one core)::

    python -m benchmarks.real_calibration --seeds 0-4

Writes ``benchmarks/results/real_calibration.md`` (``--out`` names another file).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from benchmarks._cli import parse_ints, parse_methods
from optuna_meta import MetaPruner
from optuna_meta.pruner._pruner import DEFAULT_TOP_K, _rank

RESULTS = Path(__file__).resolve().parent / "results"


def _shipped() -> MetaPruner:
    return MetaPruner()


def _noisy_variant() -> MetaPruner:
    from benchmarks.noisy_curves import real_curve_pruner

    return real_curve_pruner()


def _recal_variant() -> MetaPruner:
    from benchmarks.recal_pruner import RecalPruner

    return RecalPruner()


def _recal2_variant() -> MetaPruner:
    from benchmarks.recal_pruner import CheapRecalPruner

    return CheapRecalPruner()


def _recal3_variant() -> MetaPruner:
    from benchmarks.recal_pruner import RescueRecalPruner

    return RescueRecalPruner()


MODELS: dict[str, tuple[str, Callable[[], MetaPruner]]] = {
    "meta": ("shipped curve model", _shipped),
    "noisy": ("trained with unstable curves too (benchmarks.noisy_curves)", _noisy_variant),
    "recal": (
        "shipped model recalibrated on the study's completed curves (benchmarks.recal_pruner)",
        _recal_variant,
    ),
    "recal2": (
        "shipped model recalibrated on the study's completed curves, each curve's errors "
        "computed once (benchmarks.recal_pruner.CheapRecalPruner)",
        _recal2_variant,
    ),
    "recal3": (
        "as recal2, its shift at least 0 and its scale at least 1 (RescueRecalPruner)",
        _recal3_variant,
    ),
}
STEP_BINS = ((1, 1), (2, 3), (4, 7), (8, 19))
"""Epochs seen (of 20) at the check."""
P_BINS = ((0.0, 0.01), (0.01, 0.03), (0.03, 0.1), (0.1, 0.3), (0.3, 1.0))
"""Predicted probability of ending above the target (the default threshold is 0.03)."""


class _Logger(BasePruner):
    """Never prunes; logs each model's probability of improvement and the target per report."""

    def __init__(self, models: Sequence[str], log: list[dict[str, Any]]) -> None:
        self.pruners = {m: MODELS[m][1]() for m in models}
        self.log = log

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not done:
            return False
        finals = sorted((t.value for t in done if t.value is not None), reverse=True)
        k = _rank(DEFAULT_TOP_K, len(finals))  # MetaPruner's default target (maximised)
        row: dict[str, Any] = {"n": trial.number, "step": trial.last_step, "target": finals[k - 1]}
        for name, pruner in self.pruners.items():
            pred = pruner.predict(study, trial)
            row[name] = None if pred is None else pred.prob_improvement
        self.log.append(row)
        return False


def logged_runs(
    datasets: Sequence[str], seeds: Sequence[int], models: Sequence[str]
) -> list[dict[str, Any]]:
    """TPE runs without pruning on real curves, each check's predictions logged."""
    from benchmarks import real_mlp_pruning as rmp

    return rmp.logged_runs(list(datasets), list(seeds), lambda log: _Logger(models, log))


def calibration_table(runs: Sequence[dict[str, Any]], models: Sequence[str]) -> str:
    """Per model, epochs-seen bin and probability bin: checks, mean prediction, realised share."""
    lines = [
        "| model | epochs seen | predicted probability | checks | mean prediction | "
        "realised share above target |",
        "|---|---|---|---|---|---|",
    ]
    for m in models:
        step, p, hit = [], [], []
        for r in runs:
            finals = [t[2] for t in r["trials"]]
            for row in r["log"]:
                if row.get(m) is None:
                    continue
                step.append(row["step"])
                p.append(row[m])
                hit.append(finals[row["n"]] > row["target"])
        s, pr, h = np.array(step), np.array(p), np.array(hit, dtype=float)
        for slo, shi in STEP_BINS:
            for plo, phi in P_BINS:
                top = pr <= phi if phi >= 1.0 else pr < phi
                sel = (s >= slo) & (s <= shi) & (pr >= plo) & top
                if not sel.any():
                    continue
                steps = f"{slo}" if slo == shi else f"{slo}-{shi}"
                lines.append(
                    f"| {m} | {steps} | {plo:g}-{phi:g} | {int(sel.sum())} | "
                    f"{pr[sel].mean():.3f} | {h[sel].mean():.3f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> Path:
    from benchmarks import real_mlp_pruning as rmp

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--datasets", default=",".join(rmp.DEFAULT_DATASETS))
    parser.add_argument("--models", default="meta,noisy")
    parser.add_argument("--out", type=Path, default=RESULTS / "real_calibration.md")
    args = parser.parse_args(argv)
    names = rmp.parse_datasets(parser, args.datasets)
    models = parse_methods(parser, args.models, MODELS)
    if not models:
        parser.error("--models names no model")
    seeds = parse_ints(args.seeds)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = logged_runs(names, seeds, models)
    text = (
        "# Real curves: calibration of MetaPruner's probability of improvement\n\n"
        f"TPE without pruning on {', '.join(names)}, seeds {seeds} ({len(runs)} runs of 30 "
        "trials, 20 epochs each). At every report before the last, each model's probability "
        "that the trial ends above the target (MetaPruner's default: the 10th best completed "
        "final, capped at the median), and whether it did.\n\n"
        + calibration_table(runs, models)
        + "\nModels: "
        + "; ".join(f"`{m}`: {MODELS[m][0]}" for m in models)
        + f".\n\nCommand: `python -m benchmarks.real_calibration --seeds {args.seeds} "
        f"--datasets {','.join(names)} --models {','.join(models)}`\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return args.out


if __name__ == "__main__":
    main()
