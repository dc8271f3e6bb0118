"""MetaSampler with the shipped ``rbv2-xgboost`` model on real XGBoost runs, against TPE.

The model was meta-trained on YAHPO's surrogate of XGBoost on OpenML tasks; here it tunes real
``xgboost.XGBClassifier`` fits on scikit-learn's bundled datasets (nothing is downloaded) and a
generated one. The objective is 3-fold cross-validated accuracy, the metric the model was
trained on. The user's names are scikit-learn's (``learning_rate``, ``reg_lambda``, ...) and
the ranges are a typical user's, narrower than the model's (at most 500 trees).

Each study is ordinary Optuna code; the only difference is
``sampler=MetaSampler(model="rbv2-xgboost", seed=...)``.

Run (a few minutes on 2 cores)::

    python examples/xgboost_tuning.py [--trials 20] [--seeds 3] [--out table.md]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import optuna

from optuna_meta import MetaSampler

BUDGETS = (1, 3, 5, 10, 20)


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Small classification tasks that need no download."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification

    generated = make_classification(
        n_samples=1500, n_features=20, n_informative=8, flip_y=0.05, random_state=0
    )
    return {
        "breast_cancer": load_breast_cancer(return_X_y=True),
        "wine": load_wine(return_X_y=True),
        "digits": load_digits(return_X_y=True),
        "generated": generated,
    }


def make_objective(X: np.ndarray, y: np.ndarray) -> Callable[[optuna.Trial], float]:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from xgboost import XGBClassifier

    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)

    def objective(trial: optuna.Trial) -> float:
        params = {
            "n_estimators": trial.suggest_int("n_estimators", 20, 500, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.5, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 12),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
            "gamma": trial.suggest_float("gamma", 1e-4, 5.0, log=True),
        }
        model = XGBClassifier(**params, tree_method="hist", n_jobs=1, random_state=0)
        return float(cross_val_score(model, X, y, cv=folds, scoring="accuracy").mean())

    return objective


def best_curve(
    sampler: optuna.samplers.BaseSampler, objective: Callable[[optuna.Trial], float], n: int
) -> tuple[np.ndarray, float, int]:
    """Best value after each trial, wall seconds, and how many trials the model served."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n)
    values = np.array([t.value for t in study.trials], dtype=float)
    served = sum(t.user_attrs.get("optuna_meta:source") == "meta" for t in study.trials)
    return np.maximum.accumulate(values), time.perf_counter() - t0, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", help="comma-separated subset of the datasets")
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning, module="xgboost")
    data = datasets()
    if args.datasets:
        names = args.datasets.split(",")
        unknown = [k for k in names if k not in data]
        if unknown:
            parser.error(f"unknown dataset(s) {unknown}; choose from {sorted(data)}")
        data = {k: data[k] for k in names}
    budgets = [b for b in BUDGETS if b <= args.trials]
    samplers: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
        "MetaSampler(rbv2-xgboost)": lambda s: MetaSampler(model="rbv2-xgboost", seed=s),
        "TPESampler": lambda s: optuna.samplers.TPESampler(seed=s),
    }
    curves: dict[str, list[np.ndarray]] = {name: [] for name in samplers}
    for dname, (X, y) in data.items():
        objective = make_objective(X, y)
        for seed in range(args.seeds):
            for name, make in samplers.items():
                curve, wall, served = best_curve(make(seed), objective, args.trials)
                curves[name].append(curve)
                cells = " ".join(f"@{b} {curve[b - 1]:.4f}" for b in budgets)
                print(
                    f"{dname} seed {seed} {name}: {cells} ({wall:.0f} s; {served}/{args.trials} "
                    "trials from the model)",
                    flush=True,
                )
    meta, tpe = (np.array(curves[n]) for n in samplers)
    header = "| sampler | " + " | ".join(f"@{b}" for b in budgets) + " |"
    lines = [
        f"Mean best 3-fold CV accuracy after N trials: {len(data)} datasets "
        f"({', '.join(data)}) x {args.seeds} seeds.",
        "",
        header,
        "|---|" + "---|" * len(budgets),
    ]
    for name, c in zip(samplers, (meta, tpe), strict=True):
        lines.append(
            f"| {name} | " + " | ".join(f"{c[:, b - 1].mean():.4f}" for b in budgets) + " |"
        )

    def record(b: int) -> str:
        m, t = meta[:, b - 1], tpe[:, b - 1]
        return f"{int((m > t).sum())}/{int((m == t).sum())}/{int((m < t).sum())}"

    wins = " | ".join(record(b) for b in budgets)
    lines.append(f"| MetaSampler wins/ties/losses | {wins} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        command = f"python examples/xgboost_tuning.py --trials {args.trials} --seeds {args.seeds}"
        if args.datasets:
            command += f" --datasets {args.datasets}"
        with open(args.out, "w") as f:
            f.write(table + f"\n\nCommand: `{command}`\n")


if __name__ == "__main__":
    main()
