"""MetaPruner on real PyTorch learning curves, against no pruning and MedianPruner.

Why: the pruner protocol (``benchmarks/pruning.py``) scores MetaPruner on YAHPO's surrogate
curves of LCBench, the kind of curves its shipped curve model learned from. A user's loop
reports real curves: noisy, of another length (here :data:`benchmarks.real_mlp.N_EPOCHS`
epochs instead of 52), from their own network and data. This benchmark checks that the
shipped curve model's decisions carry over, with nothing meta-trained for these runs.

Protocol: the real MLP runs of :mod:`benchmarks.real_mlp` (LCBench's funnel MLP, SGD + cosine
annealing, the same datasets, splits and seeds), sampled by TPE or by the default MetaSampler
(:data:`PRUNERS`). Trials are asked one after the other; each
reports its validation accuracy after every epoch (``trial.report(acc, epoch)``) and stops
when ``trial.should_prune()`` says so. A run stops once :data:`EPOCH_BUDGET` epochs (30 full
trials' worth) are spent; a trial cut by the budget is told FAIL and never counts. Scores, as
in the pruner protocol: the best *completed* trial's final accuracy after E cumulative epochs,
the median speed-up against the no-pruning run of the same sampler, dataset and seed (epochs
that run needed to reach its final best, divided by the epochs this run needed to reach that
value, 0 when never), and how many runs reach the no-pruning final.

Run (about 2.5 hours on one core; ``--seeds``, ``--datasets`` and ``--pruners`` split it
over processes, ``--merge`` joins their raw files)::

    python -m benchmarks.real_mlp_pruning --seeds 0-4

Writes ``benchmarks/results/real_mlp_pruning.md`` and
``benchmarks/results/raw/real_mlp_pruning_<datasets>[__<methods>].json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from benchmarks._cli import parse_ints, parse_list, parse_methods
from benchmarks.pruning import (
    STATE_COMPLETE,
    STATE_CUT,
    STATE_PRUNED,
    best_completed_at,
    epochs_to_reach,
)
from benchmarks.real_mlp import DATASETS, N_EPOCHS, datasets, make_curve, suggest
from benchmarks.real_mlp import METHODS as SAMPLERS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
EPOCH_BUDGET = 30 * N_EPOCHS
"""Epochs a run may spend: as many as 30 trials without pruning."""
BUDGETS = (5 * N_EPOCHS, 10 * N_EPOCHS, 20 * N_EPOCHS, EPOCH_BUDGET)
DEFAULT_DATASETS = ("digits", "generated_4class", "generated_binary")
"""Datasets the default run uses: the three on which 30 trials still leave room (on
breast_cancer and wine the best configurations tie near 97-100 %)."""


def _meta_pruner() -> optuna.pruners.BasePruner:
    from optuna_meta import MetaPruner

    return MetaPruner()


def _confirm_pruner() -> optuna.pruners.BasePruner:
    from benchmarks.confirm_pruner import ConfirmPruner

    return ConfirmPruner()


def _noisy_pruner() -> optuna.pruners.BasePruner:
    from benchmarks.noisy_curves import real_curve_pruner

    return real_curve_pruner()


PRUNERS: dict[
    str,
    tuple[Callable[[int], optuna.samplers.BaseSampler], Callable[[], optuna.pruners.BasePruner]],
] = {
    "nop": (SAMPLERS["tpe"], optuna.pruners.NopPruner),
    "median": (SAMPLERS["tpe"], optuna.pruners.MedianPruner),
    "meta": (SAMPLERS["tpe"], _meta_pruner),
    "meta_confirm2": (SAMPLERS["tpe"], _confirm_pruner),
    "meta_noisy": (SAMPLERS["tpe"], _noisy_pruner),
    "metasampler_nop": (SAMPLERS["meta"], optuna.pruners.NopPruner),
    "metasampler_meta": (SAMPLERS["meta"], _meta_pruner),
}
"""Each method's (sampler factory, pruner factory); its speed-up is measured against
:data:`BASELINE`'s run of the same dataset and seed."""
DEFAULT_PRUNERS = ("nop", "median", "meta", "metasampler_nop", "metasampler_meta")
"""The rows a run makes unless ``--pruners`` names others (the variants ``meta_confirm2``
and ``meta_noisy`` are run on request only; session 26's ``meta_rank``, whose early-rank
inputs are the default since session 27, is in ``results/seeds0-9`` and ``results/seeds10-14``)."""
BASELINE = {
    "nop": "nop",
    "median": "nop",
    "meta": "nop",
    "meta_confirm2": "nop",
    "meta_noisy": "nop",
    "metasampler_nop": "metasampler_nop",
    "metasampler_meta": "metasampler_nop",
}
LABELS = {
    "nop": "TPE, no pruning",
    "median": "TPE + MedianPruner()",
    "meta": "TPE + MetaPruner()",
    "meta_confirm2": "TPE + MetaPruner(), two consecutive checks (session 25 variant)",
    "meta_noisy": "TPE + MetaPruner(), curve model trained with unstable curves too "
    "(session 26 variant)",
    "metasampler_nop": "MetaSampler(), no pruning",
    "metasampler_meta": "MetaSampler() + MetaPruner()",
}


def run(
    dataset: str,
    data: tuple[np.ndarray, np.ndarray],
    pruner: str,
    seed: int,
    method: tuple[Callable[[int], Any], Callable[[], Any]] | None = None,
):
    """One run: each trial as ``[epochs, state, final]`` (the pruner protocol's records).

    ``method``: the (sampler, pruner) factories when they are not ``PRUNERS[pruner]`` (a
    benchmark's own pruner, recorded under the name ``pruner``).
    """
    curve_of = make_curve(*data, seed)
    make_sampler, make_pruner = method or PRUNERS[pruner]
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler(seed), pruner=make_pruner()
    )
    trials: list[list[float]] = []
    spent = 0
    t0 = time.perf_counter()
    while spent < EPOCH_BUDGET:
        trial = study.ask()
        epochs, value, state = 0, float("nan"), STATE_COMPLETE
        for epoch, value in enumerate(curve_of(suggest(trial)), start=1):
            epochs, spent = epoch, spent + 1
            trial.report(value, epoch)
            if epoch == N_EPOCHS:
                break
            if spent >= EPOCH_BUDGET:
                state = STATE_CUT  # cut by the budget: never counts
                break
            if trial.should_prune():
                state = STATE_PRUNED
                break
        if state == STATE_COMPLETE:
            study.tell(trial, value)
        else:
            told = TrialState.PRUNED if state == STATE_PRUNED else TrialState.FAIL
            study.tell(trial, state=told)
        trials.append([epochs, state, value if state == STATE_COMPLETE else float("nan")])
    return {
        "dataset": dataset,
        "pruner": pruner,
        "seed": seed,
        "trials": trials,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def parse_datasets(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """``"a,b"`` -> ["a", "b"], each one of :data:`~benchmarks.real_mlp.DATASETS`; otherwise a
    clear CLI error (an empty list too)."""
    names = parse_list(text) or []
    unknown = sorted(set(names) - set(DATASETS))
    if not names or unknown:
        parser.error(f"unknown or no datasets {unknown}; known: {sorted(DATASETS)}")
    return names


def logged_runs(
    names: list[str] | tuple[str, ...],
    seeds: list[int] | tuple[int, ...],
    make_logger: Callable[[list[dict[str, Any]]], optuna.pruners.BasePruner],
) -> list[dict[str, Any]]:
    """TPE runs without pruning whose pruner, ``make_logger(log)``, only records each report.

    Every trial runs to its final epoch, so each logged check can be scored against the
    trial's true final (``benchmarks.confirm_pruner``, ``benchmarks.real_calibration``).
    """
    import torch

    torch.set_num_threads(1)
    data = datasets()
    out = []
    for name in names:
        for seed in seeds:
            log: list[dict[str, Any]] = []
            method = (SAMPLERS["tpe"], lambda log=log: make_logger(log))
            r = run(name, data[name], "logger", seed, method)
            out.append({"dataset": name, "seed": seed, "trials": r["trials"], "log": log})
            print(f"{name} seed {seed}: {len(r['trials'])} trials, {len(log)} checks", flush=True)
    return out


def report(runs: list[dict[str, Any]], command: str) -> str:
    """The markdown table: best completed accuracy by epochs, speed-up and reach."""
    by = {(r["dataset"], r["seed"], r["pruner"]): r for r in runs}
    pruners = [p for p in PRUNERS if any(r["pruner"] == p for r in runs)]
    keys = sorted({(r["dataset"], r["seed"]) for r in runs})
    keys = [k for k in keys if all((*k, p) in by for p in pruners)]
    names = sorted({k[0] for k in keys})
    lines = [
        f"Real PyTorch learning curves ({N_EPOCHS} epochs a trial; {', '.join(names)}; seeds "
        f"{sorted({k[1] for k in keys})}): mean best completed validation accuracy (%) after E "
        "cumulative epochs, median speed-up against no pruning with the same sampler, and runs "
        "reaching that run's final.",
        "",
        "| sampler + pruner | runs | "
        + " | ".join(f"@{e} ep" for e in BUDGETS)
        + " | median speed-up | runs reaching no-pruning final | trials/run |",
        "|---|---|" + "---|" * (len(BUDGETS) + 3),
    ]
    for p in pruners:
        best = np.array([best_completed_at(by[(*k, p)]["trials"], BUDGETS) for k in keys])
        best = np.where(np.isnan(best), 0.0, best)  # no completed trial yet
        speed, reached = [], 0
        for k in keys:
            base = by.get((*k, BASELINE[p]))
            if base is None:
                continue
            final = best_completed_at(base["trials"], [EPOCH_BUDGET])[0]
            e_nop = epochs_to_reach(base["trials"], final)
            e_run = epochs_to_reach(by[(*k, p)]["trials"], final)
            reached += bool(np.isfinite(e_run))
            speed.append(e_nop / e_run if np.isfinite(e_run) else 0.0)
        n_trials = np.mean([len(by[(*k, p)]["trials"]) for k in keys])
        cells = " | ".join(f"{c:.2f}" for c in best.mean(axis=0))
        sp = f"{np.median(speed):.2f}x" if speed else "-"
        lines.append(
            f"| {LABELS[p]} | {len(keys)} | {cells} | {sp} | {reached}/{len(speed)} | "
            f"{n_trials:.1f} |"
        )
    lines += _paired_lines(by, keys, pruners)
    return "\n".join(lines) + f"\n\nCommand: `{command}`\n"


PAIRED_REFERENCES = ("median", "meta")
"""Rows every other TPE row is paired with, run by run (when both are in the table)."""


def _paired_lines(
    by: dict[tuple[str, Any, str], dict[str, Any]],
    keys: list[tuple[str, Any]],
    pruners: list[str],
) -> list[str]:
    """Mean paired differences (row minus reference) of the best completed accuracy, with
    their standard errors: the same dataset and seed, so the runs' own spread cancels."""
    lines: list[str] = []
    for i, ref in enumerate(PAIRED_REFERENCES):
        done = PAIRED_REFERENCES[: i + 1]  # a pair already shown is not shown again
        rows = [p for p in pruners if p not in done and BASELINE[p] == BASELINE[ref]]
        if ref not in pruners or not rows or len(keys) < 2:
            continue
        lines += [
            "",
            f"Paired against {LABELS[ref]} (row minus it; mean over the {len(keys)} runs, "
            "standard error in brackets; accuracy points):",
            "",
            "| sampler + pruner | " + " | ".join(f"@{e} ep" for e in BUDGETS) + " |",
            "|---|" + "---|" * len(BUDGETS),
        ]
        ref_best = np.array([best_completed_at(by[(*k, ref)]["trials"], BUDGETS) for k in keys])
        ref_best = np.where(np.isnan(ref_best), 0.0, ref_best)
        for p in rows:
            best = np.array([best_completed_at(by[(*k, p)]["trials"], BUDGETS) for k in keys])
            d = np.where(np.isnan(best), 0.0, best) - ref_best
            se = d.std(axis=0, ddof=1) / np.sqrt(len(keys))
            cells = " | ".join(
                f"{m:+.2f} ({e:.2f})" for m, e in zip(d.mean(axis=0), se, strict=True)
            )
            lines.append(f"| {LABELS[p]} | {cells} |")
    return lines


def merged_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """The runs of raw files, in order; a later file's run of a (dataset, seed, pruner) replaces
    an earlier one's (a row rerun after a change to the shipped models)."""
    runs: dict[tuple[str, int, str], dict[str, Any]] = {}
    for path in paths:
        for r in json.loads(path.read_text())["runs"]:
            key = (r["dataset"], r["seed"], r["pruner"])
            runs.pop(key, None)  # a replaced run moves to its file's place
            runs[key] = r
    return list(runs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--pruners", default=",".join(DEFAULT_PRUNERS))
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        help="only rebuild the table from these raw files (a later file's run replaces an "
        "earlier one's of the same dataset, seed and pruner)",
    )
    args = parser.parse_args()
    command = f"python -m benchmarks.real_mlp_pruning --seeds {args.seeds}"
    if args.merge:
        keep = set(parse_methods(parser, args.pruners, PRUNERS))
        runs = merged_runs(args.merge)
        runs = [r for r in runs if r["pruner"] in keep]  # e.g. rows run on more seeds alone
        text = report(runs, "python -m benchmarks.real_mlp_pruning " + shlex.join(sys.argv[1:]))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "real_mlp_pruning.md").write_text(text)
        print(text)
        return
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruners = parse_methods(parser, args.pruners, PRUNERS)
    names = parse_list(args.datasets) or list(DEFAULT_DATASETS)
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown datasets {unknown}; known: {list(DATASETS)}")
    data = datasets()
    runs = []
    for name in names:
        for seed in parse_ints(args.seeds):
            for p in pruners:
                r = run(name, data[name], p, seed)
                runs.append(r)
                done = [t[2] for t in r["trials"] if t[1] == STATE_COMPLETE]
                print(
                    f"{name} seed {seed} {p}: {len(r['trials'])} trials, best completed "
                    f"{max(done, default=float('nan')):.2f} ({r['wall_s']:.0f} s)",
                    flush=True,
                )
    (args.out / "raw").mkdir(parents=True, exist_ok=True)
    default = pruners == list(DEFAULT_PRUNERS)
    stem = "_".join(names) + ("" if default else "__" + "_".join(pruners))
    raw = args.out / "raw" / f"real_mlp_pruning_{stem}.json"
    raw.write_text(json.dumps({"runs": runs}))
    text = report(runs, command)
    (args.out / "real_mlp_pruning.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
