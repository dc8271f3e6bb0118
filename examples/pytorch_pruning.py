"""MetaPruner (and MetaSampler) in a plain PyTorch training loop.

Why this example: most users prune from their own loop, not through a framework. The loop
below is ordinary Optuna code: after every epoch it calls ``trial.report(val_accuracy,
epoch)`` and stops the trial when ``trial.should_prune()`` says so. MetaPruner predicts each
trial's final accuracy from its partial learning curve and from the study's completed curves,
and stops trials that are unlikely to reach the best ones; the epochs saved go to new trials.

The data is scikit-learn's bundled 8x8 digits (no download); the model is an MLP whose
hyperparameters carry LCBench-like names, so MetaSampler's shipped model serves them (the
names are matched through its alias vocabulary).

Run (CPU, about a minute)::

    python examples/pytorch_pruning.py --trials 30 --epochs 20

Each trial's user attrs (``optuna_meta:source``, ``optuna_meta:predicted_final``,
``optuna_meta:prob_improvement``) are printed at the end; with ``--storage sqlite:///torch.db``
they show up in optuna-dashboard.
"""

from __future__ import annotations

import argparse
import math

import optuna

from optuna_meta import MetaPruner, MetaSampler

VAL_FRACTION = 0.3
GRAD_CLIP = 5.0
"""Gradient-norm clipping: keeps the largest learning rates from diverging on this small set."""


def load_digits_split(seed: int):
    """Standardised digits features, split into training and validation tensors."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, test_size=VAL_FRACTION, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_va = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (X_tr, X_va))
    y_tr, y_va = (torch.tensor(a, dtype=torch.long) for a in (y_tr, y_va))
    return X_tr, y_tr, X_va, y_va


def make_objective(data, n_epochs: int):
    """``objective(trial)``: train an MLP, report validation accuracy (%) after every epoch."""
    import torch
    from torch import nn

    X_tr, y_tr, X_va, y_va = data

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        momentum = trial.suggest_float("momentum", 0.1, 0.99)
        weight_decay = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
        batch_size = trial.suggest_int("batch_size", 16, 512, log=True)
        num_layers = trial.suggest_int("num_layers", 1, 4)
        max_units = trial.suggest_int("max_units", 16, 512, log=True)
        dropout = trial.suggest_float("max_dropout", 0.0, 0.8)

        torch.manual_seed(trial.number)
        layers: list[nn.Module] = []
        width = X_tr.shape[1]
        for _ in range(num_layers):
            layers += [nn.Linear(width, max_units), nn.ReLU(), nn.Dropout(dropout)]
            width = max_units
        model = nn.Sequential(*layers, nn.Linear(width, 10))
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
        # LCBench's training recipe (the shipped model's experience): SGD with cosine annealing
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_epochs)
        loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(trial.number)
        accuracy = 0.0
        for epoch in range(1, n_epochs + 1):
            model.train()
            for idx in torch.randperm(len(X_tr), generator=gen).split(batch_size):
                opt.zero_grad()
                loss = loss_fn(model(X_tr[idx]), y_tr[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                opt.step()
            sched.step()
            model.eval()
            with torch.no_grad():
                accuracy = 100.0 * (model(X_va).argmax(1) == y_va).float().mean().item()
            if not math.isfinite(loss.item()):
                accuracy = float("nan")  # diverged: MetaPruner prunes non-finite reports
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    return objective


def _fmt(x: object) -> str:
    return f"{x:.2f}" if isinstance(x, float) else "-"


def main(argv: list[str] | None = None) -> optuna.Study:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", default=None, help="e.g. sqlite:///torch.db (for the dashboard)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=MetaSampler(seed=args.seed),
        pruner=MetaPruner(),
        storage=args.storage,
        study_name=f"pytorch-pruning-seed{args.seed}" if args.storage else None,
        load_if_exists=True,
    )
    objective = make_objective(load_digits_split(args.seed), args.epochs)
    study.optimize(objective, n_trials=args.trials)

    print("| trial | state | source | epochs | val accuracy | predicted final | P(improve) |")
    print("|---|---|---|---|---|---|---|")
    epochs = 0
    for t in study.trials:
        ua = t.user_attrs
        steps = len(t.intermediate_values)
        epochs += steps
        last = t.intermediate_values.get(t.last_step) if t.last_step is not None else None
        print(
            f"| {t.number} | {t.state.name} | {ua.get('optuna_meta:source', '-')} | {steps} "
            f"| {_fmt(last)} | {_fmt(ua.get('optuna_meta:predicted_final'))} "
            f"| {_fmt(ua.get('optuna_meta:prob_improvement'))} |"
        )
    full = args.epochs * len(study.trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max((t.value for t in done if t.value is not None), default=float("nan"))
    print(
        f"\nbest validation accuracy {best:.2f} %; epochs trained {epochs} of {full} "
        f"({100.0 * epochs / max(full, 1):.1f} %)"
    )
    return study


if __name__ == "__main__":
    main()
