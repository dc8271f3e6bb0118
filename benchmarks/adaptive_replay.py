"""Replays stored fixed-schedule MetaSampler runs through ``adaptive_fallback``'s rule.

Why: ``adaptive_fallback`` (session 17) reads only the study's history -- values, feasibility
and which sampler proposed each trial -- so a run with it is the fixed-schedule run of the same
model and seed, trial for trial, until the first trial at which the fallback leads. Replaying
a stored fixed-schedule run through the rule (``optuna_meta.sampler._schedule._fallback_leads``,
the sampler's own function) tells exactly which runs it changes and from which trial, without
the fold models. That covered the benchmarks whose fold models were too slow to rebuild in
session 17 (rbv2_xgboost's, rerun in session 18). Checked against every rerun of sessions 17
and 18: it names the same runs and trials as the reruns do (``benchmarks/README.md``).

Run::

    python -m benchmarks.adaptive_replay     # every stored fixed-schedule run it knows
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from benchmarks.pruning import STATE_COMPLETE
from benchmarks.report import RESULTS_DIR
from optuna_meta.sampler import ATTR_SOURCE
from optuna_meta.sampler._sampler import DEFAULT_N_META_TRIALS
from optuna_meta.sampler._schedule import DEFAULT_FALLBACK_EVERY, _fallback_leads, _scheduled_turn

RAW = RESULTS_DIR / "raw"
DESIGN_LENGTH = 10
"""The design length of every model these runs used (the interleaving starts there)."""

SOURCES: dict[str, tuple[str, str | None, str]] = {
    # Rerun in session 17 beside the adaptive rule: its replay checks the rule against reruns.
    "sampler CV, LCBench": ("sampler_lcbench_meta_fixedschedule.json", None, "values"),
    "transfer, lr mirrored": ("transfer_lcbench_lr.json", "meta_fixedschedule", "values"),
    "transfer, all mirrored": ("transfer_lcbench_all.json", "meta_fixedschedule", "values"),
    "constrained LCBench": ("constrained_lcbench.json", "meta_fixedschedule", "values"),
    "constrained LCBench, q50": ("constrained_lcbench_q50.json", "meta_fixedschedule", "values"),
    "constrained rbv2_xgboost, held-out": (
        "constrained_rbv2_xgboost_heldout.json",
        "meta_fixedschedule",
        "values",
    ),
    "fixed params, LCBench": ("fixed_params_lcbench.json", "meta_fixedschedule", "values"),
    "MetaSampler + MetaPruner (pruner protocol)": (
        "pruner_lcbench_meta_meta_default_fixedschedule.json",
        None,
        "trials",
    ),
    "MetaSampler, no pruning (pruner protocol)": (
        "pruner_lcbench_meta_nop_fixedschedule.json",
        None,
        "trials",
    ),
    # Rerun in session 18, once rbv2_xgboost's fold models built fast enough.
    "sampler CV, rbv2_xgboost": ("sampler_rbv2_xgboost_meta_fixedschedule.json", None, "values"),
    "constrained rbv2_xgboost": ("constrained_rbv2_xgboost.json", "meta_fixedschedule", "values"),
    "fixed params, rbv2_xgboost": (
        "fixed_params_rbv2_xgboost.json",
        "meta_fixedschedule",
        "values",
    ),
}
"""label -> (raw file, method key inside it or None, how its trials are stored)."""


def _trial(number: int, value: float | None, feasible: bool | None, source: str) -> FrozenTrial:
    if value is None or not math.isfinite(value):
        t = optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs={ATTR_SOURCE: source})
    else:
        system = {} if feasible is None else {"constraints": [0.0 if feasible else 1.0]}
        t = optuna.trial.create_trial(
            value=value, user_attrs={ATTR_SOURCE: source}, system_attrs=system
        )
    t.number = number
    return t


def first_lead(values: Sequence[float | None], feasible: Sequence[bool] | None) -> int | None:
    """The first trial the fallback would take beyond the fixed schedule (None: never)."""
    trials: list[FrozenTrial] = []
    completed = 0
    for k, v in enumerate(values):
        if completed >= DEFAULT_N_META_TRIALS:
            return None  # the fallback has taken over for good: nothing left to change
        turn = _scheduled_turn(k, DESIGN_LENGTH, DEFAULT_FALLBACK_EVERY, adaptive=True)
        if turn is None and _fallback_leads(trials, DESIGN_LENGTH, StudyDirection.MAXIMIZE):
            return k
        ok = None if feasible is None else feasible[k]
        trials.append(_trial(k, v, ok, "fallback" if turn else "meta"))
        completed += trials[-1].state == TrialState.COMPLETE
    return None


def _runs(path: Path, key: str | None, kind: str) -> list[tuple[list[float | None], Any]]:
    runs = json.loads(path.read_text())["runs"]
    runs = runs.get(key, []) if key else runs
    if kind == "trials":  # [epochs, state, final value]: only completed trials have a value
        return [
            ([v if s == STATE_COMPLETE else None for _, s, v in r["trials"]], None) for r in runs
        ]
    return [(r["values"], r.get("feasible")) for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=RAW)
    args = parser.parse_args()
    print("| stored fixed-schedule runs | runs | changed | first changed trial of each |")
    print("|---|---|---|---|")
    for label, (name, key, kind) in SOURCES.items():
        path = args.raw / name
        if not path.is_file():
            continue
        firsts = [first_lead(v, f) for v, f in _runs(path, key, kind)]
        if not firsts:
            continue  # that method has not run there
        hit = sorted(k for k in firsts if k is not None)
        print(f"| {label} | {len(firsts)} | {len(hit)} | {', '.join(map(str, hit)) or '-'} |")


if __name__ == "__main__":
    main()
