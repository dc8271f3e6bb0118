"""MetaSampler vs TPE on tasks the shipped model never saw: a real, small tuning run.

The objective is LCBench's MLP tuning problem (7 hyperparameters: batch size, learning rate,
momentum, weight decay, layers, units, dropout; validation accuracy after 52 epochs), answered
by the YAHPO Gym surrogate of real training runs, on YAHPO's three held-out test tasks. The
shipped ``lcbench-mlp`` model was meta-trained on the other 31 LCBench tasks only.

Each study uses ordinary Optuna code; the only difference is ``sampler=MetaSampler(seed=...)``.
The user-facing names (``lr``, ``dropout``, ``n_units``, ...) differ from the model's on purpose:
they are matched through the alias vocabulary.

Run (about a minute on 2 cores)::

    python examples/quickstart.py [--trials 30] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import optuna

from optuna_meta import MetaSampler
from optuna_meta.data import TEST_INSTANCES, YahpoSurrogate, default_yahpo_dir

BUDGETS = (1, 3, 5, 10, 20, 30)
# User names -> LCBench names (what the surrogate of real runs expects).
USER_TO_LCBENCH = {
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "momentum": "momentum",
    "wd": "weight_decay",
    "n_layers": "num_layers",
    "n_units": "max_units",
    "dropout": "max_dropout",
}


def make_objective(bench: YahpoSurrogate, task: str) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        params = {
            "batch_size": trial.suggest_int("batch_size", 16, 512, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
            "momentum": trial.suggest_float("momentum", 0.1, 0.99),
            "wd": trial.suggest_float("wd", 1e-5, 0.1),
            "n_layers": trial.suggest_int("n_layers", 1, 5),
            "n_units": trial.suggest_int("n_units", 64, 1024, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 1.0),
        }
        config = {USER_TO_LCBENCH[k]: v for k, v in params.items()}
        return float(bench.evaluate(task, [config], outputs=["val_accuracy"])["val_accuracy"][0])

    return objective


def reference(bench: YahpoSurrogate, task: str) -> tuple[float, float]:
    """Best and worst accuracy of 20k random configurations: the scale of normalised regret."""
    ref = default_yahpo_dir()
    path = None if ref is None else ref.parent.parent / "benchmarks" / "lcbench_reference.json"
    if path is not None and path.is_file():
        r = json.loads(path.read_text())[task]
        return r["max"], r["min"]
    cols = bench.sample_columns(20_000, np.random.default_rng(12345))
    acc = bench.evaluate(task, cols, outputs=["val_accuracy"])["val_accuracy"]
    return float(acc.max()), float(acc.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bench = YahpoSurrogate("lcbench")
    samplers = {
        "MetaSampler": lambda seed: MetaSampler(seed=seed),
        "TPESampler": lambda seed: optuna.samplers.TPESampler(seed=seed),
    }
    regrets: dict[str, list[np.ndarray]] = {name: [] for name in samplers}
    seconds: dict[str, float] = dict.fromkeys(samplers, 0.0)
    for task in TEST_INSTANCES["lcbench"]:
        ref_max, ref_min = reference(bench, task)
        for seed in range(args.seeds):
            for name, make in samplers.items():
                study = optuna.create_study(direction="maximize", sampler=make(seed))
                start = time.perf_counter()
                study.optimize(make_objective(bench, task), n_trials=args.trials)
                seconds[name] += time.perf_counter() - start
                best = np.maximum.accumulate([t.value for t in study.trials])
                top = max(ref_max, float(best.max()))
                regrets[name].append((top - best) / (top - ref_min))
    shown = [b for b in BUDGETS if b <= args.trials]
    print(
        f"\nMean normalised regret (0 = best known) on the held-out LCBench tasks "
        f"{', '.join(TEST_INSTANCES['lcbench'])}, {args.seeds} seeds each:\n"
    )
    print("| sampler | " + " | ".join(f"@{b}" for b in shown) + " | seconds |")
    print("|---|" + "---|" * (len(shown) + 1))
    for name, runs in regrets.items():
        mean = np.mean(runs, axis=0)
        cells = " | ".join(f"{mean[b - 1]:.4f}" for b in shown)
        print(f"| {name} | {cells} | {seconds[name]:.1f} |")


if __name__ == "__main__":
    main()
