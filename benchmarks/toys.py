"""Small synthetic objectives with LCBench's parameter names: how MetaSampler does off its data.

Why: the first thing many users try is a toy function. Its names (``lr``, ``momentum``, ...)
match the shipped model's, so MetaSampler serves it, but the landscape is nothing like an MLP's
on LCBench. This benchmark measures what the shipped model does there, next to Optuna's own
samplers, so the README can say it plainly.

Objectives (maximised; the optimum is 0):

* ``bowl2``: ``-|log10(lr) + 2.5| - |momentum - 0.9|`` (the user-acceptance review's repro);
* ``bowl4``: a smooth 4-parameter bowl in ``lr`` (optimum 5e-4), ``momentum`` (0.6),
  ``weight_decay`` (1e-3, log scale) and ``dropout`` (0.3).

Run (a few minutes; GPSampler is the slow one):
    .. code-block:: bash

        python -m benchmarks.toys --seeds 0-4 --n-trials 30
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna

from benchmarks._cli import parse_ints, parse_methods

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUDGETS = (1, 5, 10, 20, 30, 50, 100)


def bowl2(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    momentum = trial.suggest_float("momentum", 0.1, 0.99)
    return -abs(math.log10(lr) + 2.5) - abs(momentum - 0.9)


def bowl4(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    momentum = trial.suggest_float("momentum", 0.1, 0.99)
    weight_decay = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.9)
    return -(
        (math.log10(lr) + 3.3) ** 2
        + 4 * (momentum - 0.6) ** 2
        + 0.1 * (math.log10(weight_decay) + 3) ** 2
        + (dropout - 0.3) ** 2
    )


OBJECTIVES: dict[str, Callable[[optuna.Trial], float]] = {"bowl2": bowl2, "bowl4": bowl4}


def _meta(seed: int) -> optuna.samplers.BaseSampler:
    from optuna_meta import MetaSampler

    return MetaSampler(seed=seed)


METHODS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "meta": _meta,
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def best_curve(objective: str, method: str, seed: int, n_trials: int) -> np.ndarray:
    """The best value after each trial of one run."""
    study = optuna.create_study(direction="maximize", sampler=METHODS[method](seed))
    study.optimize(OBJECTIVES[objective], n_trials=n_trials)
    return np.maximum.accumulate([t.value for t in study.trials])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")  # GPSampler's greenlet note, experimental warnings
    methods = parse_methods(parser, args.methods, METHODS)
    seeds = parse_ints(args.seeds)
    budgets = [b for b in BUDGETS if b <= args.n_trials]
    lines = [
        "Synthetic objectives with LCBench's parameter names (maximised, optimum 0): mean over "
        f"seeds {args.seeds} of the best value after N trials; MetaSampler with its shipped "
        "default model.",
        "",
        "| objective | sampler | " + " | ".join(f"@{b}" for b in budgets) + " |",
        "|---" * (len(budgets) + 2) + "|",
    ]
    for objective in OBJECTIVES:
        for method in methods:
            curves = np.array([best_curve(objective, method, s, args.n_trials) for s in seeds])
            cells = " | ".join(f"{curves[:, b - 1].mean():.4f}" for b in budgets)
            lines.append(f"| {objective} | {method} | {cells} |")
            print(lines[-1], flush=True)
    command = f"python -m benchmarks.toys --seeds {args.seeds} --n-trials {args.n_trials}"
    if methods != list(METHODS):
        command += f" --methods {args.methods}"
    lines += ["", f"Command: `{command}`", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "toys.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
