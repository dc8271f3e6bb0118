"""The default MetaSampler on real PyTorch MLP training runs, against TPE and random search.

Why: every other LCBench figure scores the sampler on YAHPO's surrogate of LCBench, the same
kind of data the shipped ``lcbench-mlp`` model learned from. A user who writes
``MetaSampler()`` tunes real training runs instead: their own network code, their own data,
their own epoch count, GPU or CPU nondeterminism aside. This benchmark checks that the shipped
model's experience carries over to such runs, with nothing meta-trained for them.

Protocol:

* Data that needs no download: scikit-learn's bundled ``digits``, ``breast_cancer`` and
  ``wine``, and two generated classification tasks (``make_classification``). Features are
  standardised; 33 % of the rows (stratified, split by the run's seed) are the validation set,
  as in LCBench.
* The network and training follow LCBench's generator (Auto-PyTorch's ``shapedmlpnet`` with
  the ``funnel`` shape): ``num_layers`` linear layers in all, the output layer included
  (:func:`funnel_widths`); dropout after each hidden layer, largest after the first
  (:func:`dropout_rates`); class-weighted cross-entropy; SGD (momentum, weight decay) with
  cosine annealing over :data:`N_EPOCHS` epochs. One deviation: the gradient norm is clipped
  at :data:`GRAD_CLIP`, as many training loops do. The study suggests LCBench's seven
  hyperparameters in LCBench's ranges, under LCBench's names. A run whose loss turns
  non-finite scores the majority-class accuracy. (Before session 21 the network had one
  hidden layer more than LCBench's for the same ``num_layers``, dropout growing towards the
  output, an unweighted loss and a 30 % split; the results were rerun.)
* The objective is the validation accuracy (%) after the last epoch. Weights are initialised
  and batches shuffled from a seed fixed per run, so a configuration has one value in a run,
  whichever sampler proposes it.
* Each sampler (:data:`METHODS`: the default ``MetaSampler()``, ``MetaSampler(model=
  "lcbench-mlp-short")`` whose design serves short runs, TPE, random search) runs ``--trials``
  trials per dataset and seed; the table gives the mean best accuracy after N trials, each
  MetaSampler's wins / ties / losses against TPE, and the mean gap to the best accuracy any
  sampler found in that run's (dataset, seed).

Run (about 90 minutes on one core; ``--datasets`` and ``--seeds`` split it
over processes, ``--merge`` joins their raw files)::

    python -m benchmarks.real_mlp --trials 30 --seeds 0-4

Writes ``benchmarks/results/real_mlp.md`` and ``benchmarks/results/raw/real_mlp*.json``.

``--design`` instead trains each entry of the shipped model's learned initial design (the
first trials of every study) once on every dataset (seed 0), beside the number of the model's
training tasks on which YAHPO's surrogate rates the entry above the best of 100,000 random
configurations (``../shared/benchmarks/lcbench_reference.json``): a sign that the entry sits
where the surrogate extrapolates, LCBench's 2,000 sampled configurations being sparse there.
Writes ``benchmarks/results/real_mlp_design.md`` (about 5 minutes). With ``--epochs 50
--datasets generated_4class_large`` the runs take as many SGD steps as LCBench's
(``real_mlp_design_50ep.md``, about 15 minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._cli import parse_ints, parse_list, parse_methods

RESULTS_DIR = Path(__file__).resolve().parent / "results"
N_EPOCHS = 20
"""Epochs a trial trains (LCBench trained 50; the cosine schedule spans whatever is run)."""
VAL_FRACTION = 0.33
"""LCBench's validation split."""
DROPOUT_MIN = 0.05
"""Auto-PyTorch's shaped MLP adds no dropout layers when ``max_dropout`` is at most this."""
GRAD_CLIP = 10.0
"""Gradient-norm clipping, as many training loops do: it keeps the loss finite at the largest
learning rates; a run that still breaks down ends near chance accuracy either way."""
BUDGETS = (1, 3, 5, 10, 20, 30, 50)
DATASETS = ("digits", "breast_cancer", "wine", "generated_4class", "generated_binary")
"""The datasets a sampler run uses by default, in order."""
LARGE_ROWS = 12_000
"""Rows of ``generated_4class_large``: with 50 epochs its runs take as many SGD steps as
LCBench's (tens of thousands), for ``--design --epochs 50``."""


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Classification tasks that need no download (two generated ones are harder)."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification

    def four_class(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        return make_classification(
            n_samples=n_samples,
            n_features=30,
            n_informative=12,
            n_classes=4,
            n_clusters_per_class=2,
            flip_y=0.05,
            random_state=0,
        )

    return {
        "digits": load_digits(return_X_y=True),
        "breast_cancer": load_breast_cancer(return_X_y=True),
        "wine": load_wine(return_X_y=True),
        "generated_4class": four_class(1500),
        "generated_4class_large": four_class(LARGE_ROWS),
        "generated_binary": make_classification(
            n_samples=1500,
            n_features=40,
            n_informative=6,
            n_redundant=10,
            class_sep=0.7,
            flip_y=0.1,
            random_state=1,
        ),
    }


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """LCBench's seven hyperparameters in LCBench's ranges, under LCBench's names."""
    return {
        "batch_size": trial.suggest_int("batch_size", 16, 512, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        "momentum": trial.suggest_float("momentum", 0.1, 0.99),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1),
        "num_layers": trial.suggest_int("num_layers", 1, 5),
        "max_units": trial.suggest_int("max_units", 64, 1024, log=True),
        "max_dropout": trial.suggest_float("max_dropout", 0.0, 1.0),
    }


def funnel_widths(n_inputs: int, n_classes: int, max_units: int, num_layers: int) -> list[int]:
    """The hidden widths of LCBench's funnel MLP (Auto-PyTorch's ``shapedmlpnet``).

    ``num_layers`` counts every linear layer, the output layer included, so 1 is a linear
    model. The first hidden layer has ``max(n_inputs, max_units)`` units; later ones shrink
    by equal integer steps towards ``n_classes``.

    Example:
        >>> funnel_widths(64, 10, 1024, 5)
        [1024, 771, 518, 265]
    """
    top = max(n_inputs, max_units)
    step = max(0, (top - n_classes) // (num_layers - 1)) if num_layers > 1 else 0
    return [top - i * step for i in range(num_layers - 1)]


def dropout_rates(max_dropout: float, num_layers: int) -> list[float | None]:
    """The dropout rate after each hidden layer of LCBench's funnel MLP, ``None`` for none.

    The rates follow the same funnel as the widths: ``max_dropout`` after the first hidden
    layer, shrinking towards the output; no dropout layer at all when ``max_dropout`` is at
    most :data:`DROPOUT_MIN`.

    Example:
        >>> dropout_rates(0.5, 3)
        [0.5, 0.25]
    """
    if max_dropout <= DROPOUT_MIN:
        return [None] * (num_layers - 1)
    return [w / 1000 * max_dropout for w in funnel_widths(0, 0, 1000, num_layers)]


def build_network(n_inputs: int, n_classes: int, config: Mapping[str, Any]) -> Any:
    """LCBench's funnel MLP for ``config`` (a ``torch.nn.Sequential``, PyTorch's default init).

    Each hidden layer is linear + ReLU (+ dropout), widths from :func:`funnel_widths`, rates
    from :func:`dropout_rates`; then a linear output layer.
    """
    from torch import nn

    layers: list[nn.Module] = []
    width = n_inputs
    widths = funnel_widths(n_inputs, n_classes, config["max_units"], config["num_layers"])
    rates = dropout_rates(config["max_dropout"], config["num_layers"])
    for units, rate in zip(widths, rates, strict=True):
        layers += [nn.Linear(width, units), nn.ReLU()]
        if rate is not None:
            layers.append(nn.Dropout(rate))
        width = units
    return nn.Sequential(*layers, nn.Linear(width, n_classes))


def make_curve(
    X: np.ndarray, y: np.ndarray, seed: int, n_epochs: int = N_EPOCHS
) -> Callable[[dict[str, Any]], Iterator[float]]:
    """``curve(config)``: train LCBench's MLP on one split, yield validation accuracy (%) after
    each of ``n_epochs`` epochs.

    A run whose loss turns non-finite has diverged: it yields the validation set's
    majority-class accuracy for its remaining epochs, as its (untrained) predictions would.
    """
    import torch
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, test_size=VAL_FRACTION, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_tr)
    Xt, Xv = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (X_tr, X_va))
    yt, yv = (torch.tensor(a, dtype=torch.long) for a in (y_tr, y_va))
    n_classes = int(y.max()) + 1
    majority = 100.0 * float((yv == yv.mode().values).float().mean())
    # LCBench's loss is class-weighted ("cross_entropy_weighted"): weights inversely
    # proportional to the training set's class counts.
    counts = torch.bincount(yt, minlength=n_classes).clamp(min=1).float()
    class_weights = len(yt) / (n_classes * counts)

    def curve(config: dict[str, Any]) -> Iterator[float]:
        torch.manual_seed(seed)
        model = build_network(Xt.shape[1], n_classes, config)
        opt = torch.optim.SGD(
            model.parameters(),
            lr=config["learning_rate"],
            momentum=config["momentum"],
            weight_decay=config["weight_decay"],
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_epochs)
        loss_fn = nn.CrossEntropyLoss(weight=class_weights)
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(n_epochs):
            model.train()
            for idx in torch.randperm(len(Xt), generator=gen).split(config["batch_size"]):
                opt.zero_grad()
                loss = loss_fn(model(Xt[idx]), yt[idx])
                if not math.isfinite(loss.item()):  # diverged
                    for _ in range(epoch, n_epochs):
                        yield majority
                    return
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                opt.step()
            sched.step()
            model.eval()
            with torch.no_grad():
                yield 100.0 * float((model(Xv).argmax(1) == yv).float().mean())

    return curve


def make_objective(X: np.ndarray, y: np.ndarray, seed: int) -> Callable[[optuna.Trial], float]:
    """``objective(trial)``: the validation accuracy (%) after the last epoch."""
    curve = make_curve(X, y, seed)

    def objective(trial: optuna.Trial) -> float:
        *_, last = curve(suggest(trial))
        return last

    return objective


def _meta(model: str) -> Callable[[int], optuna.samplers.BaseSampler]:
    """``seed -> MetaSampler`` with the shipped ``model``."""

    def make(seed: int) -> optuna.samplers.BaseSampler:
        from optuna_meta import MetaSampler

        return MetaSampler(model=model, seed=seed)

    return make


METHODS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "meta": _meta("lcbench-mlp"),
    "meta_short": _meta("lcbench-mlp-short"),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}
LABELS = {
    "meta": "MetaSampler() (shipped lcbench-mlp)",
    "meta_short": 'MetaSampler(model="lcbench-mlp-short")',
    "tpe": "TPESampler",
    "random": "Random",
}
SHORT_LABELS = {"meta": "MetaSampler", "meta_short": "MetaSampler lcbench-mlp-short"}
"""The MetaSampler methods, as their wins against TPE are labelled."""


def run(dataset: str, data: tuple[np.ndarray, np.ndarray], method: str, seed: int, n: int):
    """One study: its trials' values and wall seconds."""
    objective = make_objective(*data, seed)
    study = optuna.create_study(direction="maximize", sampler=METHODS[method](seed))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n)
    values = [float(t.value) for t in study.trials if t.value is not None]
    return {
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "values": values,
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def report(runs: list[dict[str, Any]], command: str) -> str:
    """The markdown table of ``runs`` (best accuracy, wins against TPE, gap to the best)."""
    n = min(len(r["values"]) for r in runs)
    budgets = [b for b in BUDGETS if b <= n]
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    keys = sorted({(r["dataset"], r["seed"]) for r in runs})
    best = {
        (r["dataset"], r["seed"], r["method"]): np.maximum.accumulate(r["values"][:n])
        for r in runs
    }
    keys = [k for k in keys if all((*k, m) in best for m in methods)]
    top = {k: max(best[(*k, m)][-1] for m in methods) for k in keys}
    datasets_ = sorted({k[0] for k in keys})
    seeds = sorted({k[1] for k in keys})
    lines = [
        f"Real PyTorch MLPs (LCBench's funnel MLP, SGD + cosine annealing, {N_EPOCHS} epochs) on "
        f"{len(datasets_)} datasets ({', '.join(datasets_)}) x seeds {seeds}: mean best "
        "validation accuracy (%) after N trials, and the mean gap (percentage points) to the "
        "best accuracy any sampler found in the same dataset and seed.",
        "",
        "| sampler | " + " | ".join(f"@{b}" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for m in methods:
        cells = [np.mean([best[(*k, m)][b - 1] for k in keys]) for b in budgets]
        lines.append(f"| {LABELS[m]} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    for m in methods:
        cells = [np.mean([top[k] - best[(*k, m)][b - 1] for k in keys]) for b in budgets]
        lines.append(f"| gap: {LABELS[m]} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")

    def record(m: str, b: int) -> str:
        d = np.array([best[(*k, m)][b - 1] - best[(*k, "tpe")][b - 1] for k in keys])
        return f"{int((d > 0).sum())}/{int((d == 0).sum())}/{int((d < 0).sum())}"

    for m in [m for m in methods if m in SHORT_LABELS and "tpe" in methods]:
        cells = " | ".join(record(m, b) for b in budgets)
        lines.append(f"| {SHORT_LABELS[m]} vs TPE: wins/ties/losses | {cells} |")
    shown = sorted({b for b in (5, 10, budgets[-1]) if b <= n})
    at_text = " / ".join(f"@{b}" for b in shown)
    lines += ["", f"Per dataset, mean best accuracy {at_text}:", ""]
    lines.append("| dataset | " + " | ".join(LABELS[m] for m in methods) + " |")
    lines.append("|---|" + "---|" * len(methods))
    for d in datasets_:
        ks = [k for k in keys if k[0] == d]
        cells = []
        for m in methods:
            at = [np.mean([best[(*k, m)][b - 1] for k in ks]) for b in shown]
            cells.append(" / ".join(f"{a:.2f}" for a in at))
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nCommand: `{command}`\n"


def design_table(names: list[str], n_epochs: int) -> str:
    """The shipped design's entries on real runs (seed 0) and above YAHPO's random best."""
    from benchmarks.objectives import get_surrogate
    from benchmarks.reference import load_reference
    from optuna_meta.data import load_yahpo
    from optuna_meta.surrogate import SurrogateModel
    from optuna_meta.surrogate._build import canonical_renames

    model = SurrogateModel.load("lcbench-mlp")
    tasks = [str(t).rsplit("/", 1)[-1] for t in model.manifest["training_tasks"]]
    space_of = load_yahpo("lcbench", n_configs=1, tasks=tasks[:1])[0]  # LCBench's own names
    lcbench_name = {model_: own for own, model_ in canonical_renames(space_of).items()}
    entries = [{lcbench_name.get(k, k): v for k, v in e.items()} for e in model.initial_design]
    surrogate, reference = get_surrogate("lcbench"), load_reference("lcbench")
    above = np.zeros(len(entries), dtype=int)
    for task in tasks:
        v = np.asarray(surrogate.evaluate(task, entries, outputs=["val_accuracy"])["val_accuracy"])
        above += v > reference[task]["max"]
    data = {k: v for k, v in datasets().items() if k in names}
    real = {}
    for name, (X, y) in data.items():
        curve = make_curve(X, y, seed=0, n_epochs=n_epochs)
        real[name] = [list(curve(e))[-1] for e in entries]
    lines = [
        "The shipped `lcbench-mlp` design's entries (the first trials of a study) trained once "
        f"on each dataset (seed 0, {n_epochs} epochs; validation accuracy, %), and the number "
        f"of the model's {len(tasks)} training tasks on which YAHPO's surrogate rates the entry "
        "above the best of 100,000 random configurations.",
        "",
        "| entry | batch | lr | momentum | weight decay | layers | units | dropout | "
        "tasks above the random best | " + " | ".join(data) + " |",
        "|" + "---|" * (9 + len(data)),
    ]
    for j, e in enumerate(entries):
        cells = [
            str(e["batch_size"]),
            f"{e['learning_rate']:.4g}",
            f"{e['momentum']:.3f}",
            f"{e['weight_decay']:.4g}",
            str(e["num_layers"]),
            str(e["max_units"]),
            f"{e['max_dropout']:.2f}",
            f"{above[j]}/{len(tasks)}",
        ] + [f"{real[n][j]:.1f}" for n in data]
        lines.append(f"| {j} | " + " | ".join(cells) + " |")
    # Of the whole set; the stratified validation split has nearly the same.
    majority = [f"{100.0 * np.bincount(y).max() / len(y):.1f}" for _, y in data.values()]
    lines.append("| majority class |" + " |" * 8 + " " + " | ".join(majority) + " |")
    command = "python -m benchmarks.real_mlp --design"
    if n_epochs != N_EPOCHS:
        command += f" --epochs {n_epochs}"
    if list(data) != list(DATASETS):
        command += f" --datasets {','.join(data)}"
    return "\n".join(lines) + f"\n\nCommand: `{command}`\n"


def _command(args: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    """The command that reproduces ``runs`` in one process."""
    n = min(len(r["values"]) for r in runs)
    seeds = sorted({r["seed"] for r in runs})
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1))
    seed_text = (
        f"{seeds[0]}-{seeds[-1]}" if contiguous and len(seeds) > 1 else ",".join(map(str, seeds))
    )
    command = f"python -m benchmarks.real_mlp --trials {n} --seeds {seed_text}"
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    if methods != list(METHODS):
        command += f" --methods {','.join(methods)}"
    names = list(dict.fromkeys(r["dataset"] for r in runs))
    if set(names) != set(DATASETS):
        command += f" --datasets {','.join(names)}"
    return command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--datasets", help="comma-separated subset (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        help="only rebuild the table from these raw files (runs split over processes)",
    )
    parser.add_argument(
        "--design", action="store_true", help="score the shipped design's entries instead"
    )
    parser.add_argument("--epochs", type=int, default=N_EPOCHS, help="with --design only")
    args = parser.parse_args()
    names = parse_list(args.datasets) or list(DATASETS)
    data = datasets()
    unknown = sorted(set(names) - set(data))
    if unknown:
        parser.error(f"unknown datasets {unknown}; known: {list(data)}")
    if args.design:
        import torch

        torch.set_num_threads(1)
        text = design_table(names, args.epochs)
        suffix = "" if args.epochs == N_EPOCHS else f"_{args.epochs}ep"
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"real_mlp_design{suffix}.md").write_text(text)
        print(text)
        return
    if args.merge:
        runs = [r for f in args.merge for r in json.loads(f.read_text())["runs"]]
        (args.out / "raw").mkdir(parents=True, exist_ok=True)
        (args.out / "raw" / "real_mlp.json").write_text(json.dumps({"runs": runs}))
        text = report(runs, _command(args, runs))
        (args.out / "real_mlp.md").write_text(text)
        print(text)
        return
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    methods = parse_methods(parser, args.methods, METHODS)
    runs = []
    for name in names:
        for seed in parse_ints(args.seeds):
            for m in methods:
                r = run(name, data[name], m, seed, args.trials)
                runs.append(r)
                print(
                    f"{name} seed {seed} {m}: best {max(r['values']):.2f} ({r['wall_s']:.0f} s)",
                    flush=True,
                )
    (args.out / "raw").mkdir(parents=True, exist_ok=True)
    raw_name = "real_mlp.json" if not args.datasets else f"real_mlp_{'_'.join(names)}.json"
    (args.out / "raw" / raw_name).write_text(json.dumps({"runs": runs}))
    text = report(runs, _command(args, runs))
    (args.out / "real_mlp.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
