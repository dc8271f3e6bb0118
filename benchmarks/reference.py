"""Per-task normalisation tables and the normalised regret.

A table maps each task to the ``max``, ``min`` and ``median`` of the scenario's metric over
100,000 uniform random configurations (``YahpoSurrogate.sample_columns`` with
``numpy.random.default_rng(12345)``, one draw of configurations shared by every task).

* ``lcbench``: ``shared/benchmarks/lcbench_reference.json`` (the project's common table; a copy
  is kept in ``benchmarks/results/lcbench_reference.json`` for machines without ``shared/``);
* ``rbv2_xgboost``: ``benchmarks/results/rbv2_xgboost_reference.json``, built by
  ``python -m benchmarks.reference --scenario rbv2_xgboost`` (all 119 tasks).

Normalised regret of a run on a task (maximisation), as in ``shared/benchmarks/README.md``::

    top(n) = max(ref_max, best_so_far(n))
    regret(n) = (top(n) - best_so_far(n)) / (top(n) - ref_min)

i.e. ``(ref_max - best_so_far(n)) / (ref_max - ref_min)`` floored at 0 (the max is raised to
the best value observed so far). This reading reproduces the shared peer table to all four
digits for random, TPE and CMA-ES; it depends only on the first n trials, so methods that
share their first trials share their regret there.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.objectives import SCENARIO_CONFIGS, all_tasks, get_surrogate
from optuna_meta.data import default_yahpo_dir

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REFERENCE_SEED = 12345
REFERENCE_SIZE = 100_000

Reference = Mapping[str, Mapping[str, float]]


def _shared_benchmarks_dir() -> Path | None:
    yahpo = default_yahpo_dir()
    candidates = []
    if yahpo is not None:
        candidates.append(Path(yahpo).resolve().parent.parent / "benchmarks")
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "benchmarks")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def reference_path(scenario: str) -> Path:
    """Where the scenario's table is read from."""
    name = f"{scenario}_reference.json"
    if scenario == "lcbench":
        shared = _shared_benchmarks_dir()
        if shared is not None and (shared / name).is_file():
            return shared / name
    return RESULTS_DIR / name


def load_reference(scenario: str) -> dict[str, dict[str, float]]:
    path = reference_path(scenario)
    if not path.is_file():
        raise FileNotFoundError(
            f"No reference table at {path}; build it with "
            f"`python -m benchmarks.reference --scenario {scenario}`."
        )
    with open(path) as f:
        return json.load(f)


def build_reference(
    scenario: str,
    tasks: Sequence[str] | None = None,
    n: int = REFERENCE_SIZE,
    seed: int = REFERENCE_SEED,
    verbose: bool = False,
    existing: Mapping[str, Mapping[str, float]] | None = None,
    save_to: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Max/min/median of the scenario's metric over ``n`` random configurations per task.

    Tasks already in ``existing`` are kept as they are; with ``save_to`` the table is written
    after every task (so an interrupted build resumes where it stopped).
    """
    surrogate = get_surrogate(scenario)
    output = SCENARIO_CONFIGS[scenario].output
    columns = surrogate.sample_columns(n, np.random.default_rng(seed))
    table: dict[str, dict[str, float]] = {k: dict(v) for k, v in (existing or {}).items()}
    for task in tasks if tasks is not None else all_tasks(scenario):
        if str(task) in table:
            continue
        t0 = time.perf_counter()
        v = surrogate.evaluate(task, columns, outputs=[output])[output]
        table[str(task)] = {
            "max": float(np.max(v)),
            "min": float(np.min(v)),
            "median": float(np.median(v)),
        }
        if save_to is not None:
            _write(save_to, table)
        if verbose:
            print(f"{scenario} {task}: {table[str(task)]} ({time.perf_counter() - t0:.1f}s)")
    return table


def _write(path: Path, table: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w") as f:
        json.dump(table, f, indent=1)
    tmp.replace(path)


def normalised_regret(
    values: Sequence[float] | np.ndarray, ref: Mapping[str, float]
) -> np.ndarray:
    """Regret of the best value so far after each of ``values`` (maximisation), in [0, 1]."""
    best = np.maximum.accumulate(np.asarray(values, dtype=float))
    return regret_of(best, float(ref["max"]), float(ref["min"]))


def shared_regret_curve(scenario: str) -> Callable[[Mapping[str, Any]], np.ndarray]:
    """A run's :func:`normalised_regret` after each trial under ``scenario``'s shared per-task
    normalisation (the setting benchmarks' tables)."""
    reference = load_reference(scenario)
    return lambda run: normalised_regret(run["values"], reference[run["task"]])


def regret_of(best: np.ndarray | float, ref_max: float, ref_min: float) -> np.ndarray:
    """``(top - best) / (top - ref_min)`` with ``top = max(ref_max, best)``, clipped to [0, 1].

    A value at or above ``ref_max`` has regret 0; one below ``ref_min`` counts as 1; ``-inf``
    (nothing observed yet) counts as 1.
    """
    b = np.asarray(best, dtype=float)
    top = np.maximum(ref_max, b)
    with np.errstate(invalid="ignore"):
        r = (top - b) / (top - ref_min)
    return np.clip(np.where(np.isfinite(b), r, 1.0), 0.0, 1.0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="rbv2_xgboost", choices=sorted(SCENARIO_CONFIGS))
    parser.add_argument("--n", type=int, default=REFERENCE_SIZE)
    parser.add_argument("--seed", type=int, default=REFERENCE_SEED)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or RESULTS_DIR / f"{args.scenario}_reference.json"
    existing = None
    if out.is_file():
        with open(out) as f:
            existing = json.load(f)
    table = build_reference(
        args.scenario, n=args.n, seed=args.seed, verbose=True, existing=existing, save_to=out
    )
    ordered = {t: table[t] for t in sorted(table, key=int)}
    _write(out, ordered)
    print(f"wrote {out} ({len(ordered)} tasks)")


if __name__ == "__main__":
    main()
