"""What a reported step costs with each pruner on a file storage (SQLite, journal).

Why: ``prune_timing`` times the model's work in ``MetaPruner.prune`` (a fraction of a
millisecond), but each check with a prediction also writes three user attrs
(``optuna_meta:predicted_final``, ``_std``, ``prob_improvement``) for the dashboard, and on a
file storage every write is a transaction. This measures the whole ``trial.report`` +
``trial.should_prune`` step as a user's loop sees it.

Protocol: 15 trials of random search, each reporting a synthetic saturating curve at steps
1..100 (pruned ones stop early), on a fresh SQLite file and a fresh journal file, with
``NopPruner``, ``MedianPruner()``, ``MetaPruner()`` and ``MetaPruner(record_predictions=False)``
(attrs written only when a check prunes); milliseconds of wall time per reported
step (sampling included, the same for all).

Run::

    python -m benchmarks.prune_storage

Writes ``benchmarks/results/timing_pruner_storage.md``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

from benchmarks.report import RESULTS_DIR
from optuna_meta import MetaPruner

N_TRIALS = 15
N_STEPS = 100
PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "NopPruner": optuna.pruners.NopPruner,
    "MedianPruner()": optuna.pruners.MedianPruner,
    "MetaPruner()": MetaPruner,
    "MetaPruner(record_predictions=False)": lambda: MetaPruner(record_predictions=False),
}


def objective(trial: optuna.Trial) -> float:
    """A curve rising to a final value set by ``x``, reported at every step."""
    final = 0.5 + 0.4 * trial.suggest_float("x", 0.0, 1.0)
    value = final
    for step in range(1, N_STEPS + 1):
        value = final * (1.0 - 0.7 / step**0.5)
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value


def ms_per_step(
    storage: str | optuna.storages.BaseStorage, pruner: optuna.pruners.BasePruner
) -> tuple[float, int]:
    """Milliseconds per reported step of :data:`N_TRIALS` trials, and the steps reported."""
    study = optuna.create_study(
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=pruner,
    )
    start = time.perf_counter()
    study.optimize(objective, n_trials=N_TRIALS)
    seconds = time.perf_counter() - start
    steps = sum(len(t.intermediate_values) for t in study.trials)
    return 1e3 * seconds / steps, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "timing_pruner_storage.md")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, make) in enumerate(PRUNERS.items()):
            sqlite = f"sqlite:///{Path(tmp) / f'{i}.db'}"
            journal = JournalStorage(JournalFileBackend(str(Path(tmp) / f"{i}.log")))
            ms_sql, steps = ms_per_step(sqlite, make())
            ms_journal, _ = ms_per_step(journal, make())
            rows.append((name, ms_sql, ms_journal, steps))
            print(f"{name}: {ms_sql:.1f} ms (SQLite), {ms_journal:.2f} ms (journal)", flush=True)
    lines = [
        f"Milliseconds per reported step (`trial.report` + `trial.should_prune`, sampling "
        f"included), {N_TRIALS} trials of random search reporting up to {N_STEPS} steps; "
        f"measured on a {os.cpu_count()}-core machine (1-minute load average {load:.1f} at the "
        "start).",
        "",
        "| pruner | SQLite file: ms a step | journal file: ms a step | steps reported (SQLite) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {a:.1f} | {b:.2f} | {s} |" for n, a, b, s in rows]
    lines += ["", "Command: `python -m benchmarks.prune_storage`", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
