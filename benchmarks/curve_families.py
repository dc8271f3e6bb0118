"""MetaPruner on learning-curve shapes beyond LCBench: synthetic families users meet.

Why: the curve model was meta-trained on LCBench's 52-epoch MLP curves, whose finals mostly
follow their early values. Users also train with schedules whose curves cross (a small
learning rate starts slowly and ends best), step decays, loss spikes, warm-ups, Hugging Face
evaluations at global steps, and metrics on other scales. Each family here is a deterministic
formula of the hyperparameters plus noise, so a pruned trial's would-be final is known and
every pruning decision can be judged (a session-34 review built them).

Protocol: per family, sampler (``RandomSampler`` / ``TPESampler``), pruner and seed, one study
that runs trials until the steps spent reach :data:`BUDGET_TRIALS` full trials' worth (a trial
pruned after step ``s`` cost ``s``). Reported over seeds: *wrong* prunes (the trial's would-be
final beats the best completed value when it was pruned), those made with at most
:data:`EARLY_COMPLETED` completed trials, pruned trials, trials, the mean best completed value
at a third of the budget and at the budget, and the paired difference at the budget against no
pruning with the same sampler and seed (oriented: positive = the pruner found better).

Run (about 15 minutes on one core for every family; ``--families`` splits the work, and the
table is rebuilt from every saved family):
    .. code-block:: bash

        python -m benchmarks.curve_families --seeds 0-9
        python -m benchmarks.curve_families --families crossing,control --seeds 0-9
"""

from __future__ import annotations

import argparse
import json
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._cli import parse_ints, parse_list
from benchmarks.report import RESULTS_DIR
from optuna_meta import MetaPruner

BUDGET_TRIALS = 25.0
"""A study's budget in full trials' worth of steps."""

EARLY_COMPLETED = 3
"""Wrong prunes made with at most this many completed trials are counted apart."""

PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "meta": MetaPruner,
    "meta_startup5": lambda: MetaPruner(n_startup_trials=5),
    "median": optuna.pruners.MedianPruner,
    "wilcoxon": lambda: optuna.pruners.WilcoxonPruner(p_threshold=0.1),
    "none": optuna.pruners.NopPruner,
}
DEFAULT_PRUNERS = ("meta", "meta_startup5", "median", "wilcoxon", "none")


@dataclass(frozen=True)
class Family:
    """A family of learning curves: ``curve(params, rng, steps)`` gives a whole noisy curve."""

    name: str
    direction: str
    steps: np.ndarray
    space: Callable[[optuna.Trial], dict[str, float]]
    curve: Callable[[dict[str, float], np.random.Generator, np.ndarray], np.ndarray]
    description: str


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _space_mlp(trial: optuna.Trial) -> dict[str, float]:
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
        "width": trial.suggest_int("width", 16, 512, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.6),
    }


def _space_sgd(trial: optuna.Trial) -> dict[str, float]:
    return {
        "lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
        "wd": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
    }


def _space_spike(trial: optuna.Trial) -> dict[str, float]:
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
        "wd": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }


def _space_hf(trial: optuna.Trial) -> dict[str, float]:
    return {
        "lr": trial.suggest_float("learning_rate", 1e-6, 1e-3, log=True),
        "wd": trial.suggest_float("weight_decay", 0.0, 0.3),
        "warmup": trial.suggest_float("warmup_ratio", 0.0, 0.2),
    }


def _control(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, w, d = p["lr"], p["width"], p["dropout"]
    a = 0.90 - 0.04 * (math.log10(lr) + 1.5) ** 2 + 0.02 * math.log(w / 16) / math.log(32)
    a -= 0.1 * (d - 0.2) ** 2
    return a - (a - 0.1) * np.exp(-0.25 * t * (1 + 0.5 * (a - 0.5))) + rng.normal(0, 0.003, len(t))


def _crossing(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, w, d = p["lr"], p["width"], p["dropout"]
    k = 0.6 * (lr / 0.1) ** 0.7
    a = 0.93 - 0.12 * _sig(2.5 * (math.log10(lr) + 1.7)) + 0.015 * math.log(w / 16) / math.log(32)
    a -= 0.1 * (d - 0.2) ** 2
    return a - (a - 0.1) * np.exp(-k * t) + rng.normal(0, 0.004, len(t))


def _sgd_final(p: dict[str, float]) -> float:
    return 0.95 - 0.06 * (math.log10(p["lr"]) + 0.8) ** 2 - 0.02 * (math.log10(p["wd"]) + 3.3) ** 2


def _stepdecay(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, final = p["lr"], _sgd_final(p)
    gap = 0.35 * lr / (lr + 0.1)
    out = 0.1 + (final - gap - 0.1) * (1 - np.exp(-0.3 * t))
    out = np.where(t >= 30, final - gap * 0.3, out)
    out = np.where(t >= 45, final, out)
    rel = lr / (lr + 0.1)
    sd = np.where(t < 30, 0.003 + 0.04 * rel, np.where(t < 45, 0.003 + 0.01 * rel, 0.002))
    return out + rng.normal(0, 1, len(t)) * sd


def _cosine(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, final = p["lr"], _sgd_final(p)
    annealed = 0.5 * (1 + np.cos(math.pi * t / 50.0))
    gap = 0.35 * lr / (lr + 0.1) * annealed
    base = 0.1 + (final - 0.1) * (1 - np.exp(-0.3 * t))
    return base - gap + rng.normal(0, 1, len(t)) * (0.003 + 0.03 * lr / (lr + 0.1) * annealed)


def _space_capacity(trial: optuna.Trial) -> dict[str, float]:
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        "width": trial.suggest_int("width", 16, 1024, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.6),
    }


def _overfit(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, w, d = p["lr"], p["width"], p["dropout"]
    cap = math.log(w / 16) / math.log(64)
    low = 0.55 - 0.2 * cap + 0.3 * (d - 0.3) ** 2
    k = 0.4 * (lr / 0.01) ** 0.6
    rise = 0.004 * cap * (1.0 - d) ** 2 * (lr / 0.01) ** 0.5
    loss = low + 1.8 * np.exp(-k * t) + rise * np.maximum(t - 3.0 / k, 0.0)
    return loss + rng.normal(0, 0.004, len(t))


def _noisy(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, w, d = p["lr"], p["width"], p["dropout"]
    a = 0.86 - 0.03 * (math.log10(lr) + 2.0) ** 2 + 0.01 * math.log(w / 16) / math.log(32)
    a -= 0.08 * (d - 0.25) ** 2
    k = 0.3 * (lr / 0.01) ** 0.3
    return a - (a - 0.5) * np.exp(-k * t) + rng.normal(0, 0.015, len(t))


def _spiky(relative: bool) -> Callable[..., np.ndarray]:
    def curve(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
        lr, wd = p["lr"], p["wd"]
        floor = 0.25 + 0.05 * (math.log10(lr) + 0.8) ** 2 + 0.02 * (math.log10(wd) + 4) ** 2
        loss = floor + 2.0 * np.exp(-0.25 * (lr / 0.01) ** 0.4 * t)
        if lr > 0.03:
            start = rng.integers(2, 15)
            shape = np.where(t >= start, np.exp(-(t - start) / 2.5), 0.0)
            if relative:  # the loss rises by 30-60 % for a few epochs
                loss = loss * (1 + (0.3 + 0.6 * min(lr, 0.5)) * shape)
            else:  # it spikes above its starting value
                loss = loss + (1.5 + 3.0 * min(lr, 0.5)) * shape
        if lr > 0.6:  # diverges
            loss = np.where(t >= 4, np.nan, loss * np.exp(0.5 * t))
        return loss * np.exp(rng.normal(0, 0.01, len(t)))

    return curve


def _space_warmup(trial: optuna.Trial) -> dict[str, float]:
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        "warmup": trial.suggest_int("warmup_epochs", 0, 12),
    }


def _warmup(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, warm = p["lr"], p["warmup"]
    need = max(0.0, math.log10(lr) + 2.5)
    floor = 0.35 - 0.08 * min(need, 1.5) + 0.3 * max(0.0, need - warm / 6.0)
    effective = np.maximum(t - warm, 0.0) + 0.15 * np.minimum(t, warm)
    loss = floor + 2.0 * np.exp(-0.2 * (lr / 0.003) ** 0.3 * effective)
    return loss * np.exp(rng.normal(0, 0.01, len(t)))


def _hf(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, wd, warm = p["lr"], p["wd"], p["warmup"]
    x = math.log10(lr) + 4.3
    floor = 0.32 + 0.06 * x * x - 0.05 * wd + 0.1 * max(0.0, 0.06 - warm) * (lr > 2e-4)
    progress = np.maximum(t - 0.5 * (2000 * warm + 1.0), 1.0) * (lr / 5e-5) ** 0.7 / 300.0
    loss = floor + 0.45 / (1 + progress)
    loss = loss + 0.00004 * max(0.0, x) * np.maximum(t - 800, 0.0) * (lr > 1e-4)
    return loss * np.exp(rng.normal(0, 0.005, len(t)))


def _mse(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, w, d = p["lr"], p["width"], p["dropout"]
    floor = 140 + 60 * (math.log10(lr) + 2.0) ** 2 - 15 * math.log(w / 16) / math.log(32)
    floor += 100 * (d - 0.1) ** 2
    return (floor + 2500 * np.exp(-0.3 * (lr / 0.01) ** 0.5 * t)) * np.exp(
        rng.normal(0, 0.01, len(t))
    )


def _nll(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, w, d = p["lr"], p["width"], p["dropout"]
    floor = -3.2 + 0.5 * (math.log10(lr) + 3.0) ** 2 - 0.3 * math.log(w / 16) / math.log(32)
    floor += d**2
    return floor + 5.0 * np.exp(-0.15 * (lr / 1e-3) ** 0.5 * t) + rng.normal(0, 0.02, len(t))


def _perplexity(p: dict[str, float], rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    lr, w, d = p["lr"], p["width"], p["dropout"]
    floor = 3.3 + 0.3 * (math.log10(lr) + 2.5) ** 2 - 0.2 * math.log(w / 16) / math.log(32)
    floor += 0.5 * (d - 0.15) ** 2
    loss = floor + 6.0 * np.exp(-0.2 * (lr / 3e-3) ** 0.5 * t) + rng.normal(0, 0.01, len(t))
    return np.exp(loss)


_EPOCHS50 = np.arange(1, 51)
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("control", "maximize", _EPOCHS50, _space_mlp, _control, "LCBench-like accuracy"),
        Family(
            "crossing", "maximize", _EPOCHS50, _space_mlp, _crossing,
            "fast learners plateau low, slow ones end high",
        ),
        Family(
            "stepdecay", "maximize", np.arange(1, 61), _space_sgd, _stepdecay,
            "lr x0.1 at epochs 30 and 45 of 60",
        ),
        Family("cosine", "maximize", _EPOCHS50, _space_sgd, _cosine, "cosine annealing"),
        Family(
            "overfit", "minimize", _EPOCHS50, _space_capacity, _overfit,
            "U-shaped validation loss, the last value returned",
        ),
        Family(
            "noisy", "maximize", np.arange(1, 31), _space_mlp, _noisy,
            "noise sd 0.015 per epoch",
        ),
        Family(
            "spike", "minimize", _EPOCHS50, _space_spike, _spiky(False),
            "large lr spikes above the start, recovers, ends lowest",
        ),
        Family(
            "spike_mild", "minimize", _EPOCHS50, _space_spike, _spiky(True),
            "large lr rises 30-60 % for a few epochs",
        ),
        Family(
            "warmup", "minimize", np.arange(1, 41), _space_warmup, _warmup,
            "0-12 warm-up epochs",
        ),
        Family(
            "hf_every50", "minimize", np.arange(50, 2001, 50), _space_hf, _hf,
            "eval loss every 50 of 2000 global steps",
        ),
        Family(
            "hf_uneven", "minimize",
            np.array([10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000]), _space_hf, _hf,
            "11 uneven reports",
        ),
        Family(
            "hf_few", "minimize", np.array([500, 1000, 1500, 2000]), _space_hf, _hf,
            "4 reports",
        ),
        Family("mse_hundreds", "minimize", _EPOCHS50, _space_mlp, _mse, "MSE in the hundreds"),
        Family(
            "nll_negative", "minimize", _EPOCHS50, _space_mlp, _nll, "an NLL that crosses 0"
        ),
        Family(
            "perplexity", "minimize", np.arange(1, 31), _space_mlp, _perplexity, "exp(loss)"
        ),
    )
}  # fmt: skip


def _better(direction: str, a: float | None, b: float | None) -> bool:
    """Whether ``a`` is strictly better than ``b`` (anything beats None; None and NaN nothing)."""
    if a is None or not math.isfinite(a):
        return False
    if b is None:
        return True
    return a > b if direction == "maximize" else a < b


def run_study(family: Family, sampler: str, pruner: str, seed: int) -> dict[str, Any]:
    """One study until the step budget is spent: its trials' states (``C``omplete or
    ``P``runed), the steps spent after each, and each one's would-be final."""
    budget = BUDGET_TRIALS * float(family.steps[-1])
    sampler_obj = (
        optuna.samplers.RandomSampler(seed=seed)
        if sampler == "random"
        else optuna.samplers.TPESampler(seed=seed)
    )
    study = optuna.create_study(
        direction=family.direction, sampler=sampler_obj, pruner=PRUNERS[pruner]()
    )
    key = zlib.crc32(family.name.encode())
    spent = 0.0
    states: list[str] = []
    costs: list[float] = []
    finals: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        nonlocal spent
        params = family.space(trial)
        curve = np.asarray(
            family.curve(params, np.random.default_rng([seed, trial.number, key]), family.steps)
        )
        finals.append(float(curve[-1]))
        for step, value in zip(family.steps, curve, strict=True):
            trial.report(float(value), int(step))
            if trial.should_prune():
                spent += float(step)
                states.append("P")
                costs.append(spent)
                raise optuna.TrialPruned()
        spent += float(family.steps[-1])
        states.append("C")
        costs.append(spent)
        return finals[-1]

    def stop(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if spent >= budget:
            study.stop()

    study.optimize(objective, callbacks=[stop])
    return dict(
        family=family.name,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        states="".join(states),
        costs=costs,
        finals=finals,
    )


def expand(run: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    """A saved run's trials as ``(state, cost after it, would-be final, completed trials
    before it, best completed before it)`` (the raw files keep the first three)."""
    out: list[dict[str, Any]] = []
    done, best = 0, None
    for state, cost, final in zip(run["states"], run["costs"], run["finals"], strict=True):
        complete = state == "C"
        out.append(
            dict(state="complete" if complete else "pruned", cost=cost, final=final, done=done,
                 best=best)
        )  # fmt: skip
        if complete:
            done += 1
            if _better(direction, final, best):
                best = final
    return out


def best_within(run: dict[str, Any], direction: str, cost: float) -> float | None:
    """The best completed would-be final among the trials finished within ``cost`` steps."""
    best = None
    for t in expand(run, direction):
        if t["cost"] > cost + 1e-9:
            break
        if t["state"] == "complete" and _better(direction, t["final"], best):
            best = t["final"]
    return best


def wrong_prunes(run: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    """Pruned trials whose would-be final beats the best completed value at the time."""
    return [
        t
        for t in expand(run, direction)
        if t["state"] == "pruned" and t["best"] is not None
        and _better(direction, t["final"], t["best"])
    ]  # fmt: skip


def family_table(runs: Sequence[dict[str, Any]], family: Family) -> list[str]:
    """Markdown rows, one per sampler and pruner, for ``family``'s runs."""
    budget = BUDGET_TRIALS * float(family.steps[-1])
    sign = 1.0 if family.direction == "maximize" else -1.0
    by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in runs:
        by.setdefault((r["sampler"], r["pruner"]), {})[r["seed"]] = r
    rows = []
    for (sampler, pruner), seeds in sorted(by.items()):
        none = by.get((sampler, "none"), {})
        wrong = [wrong_prunes(r, family.direction) for r in seeds.values()]
        early = sum(sum(t["done"] <= EARLY_COMPLETED for t in w) for w in wrong)
        pruned = sum(r["states"].count("P") for r in seeds.values())
        n_trials = sum(len(r["states"]) for r in seeds.values())
        third = [best_within(r, family.direction, budget / 3) for r in seeds.values()]
        full = {s: best_within(r, family.direction, budget) for s, r in seeds.items()}
        base = {s: best_within(r, family.direction, budget) for s, r in none.items()}
        diffs = [
            sign * (v - b)
            for s, v in full.items()
            if v is not None and (b := base.get(s)) is not None
        ]
        paired = "-" if pruner == "none" or len(diffs) < 2 else (
            f"{np.mean(diffs):+.4g} ({np.std(diffs, ddof=1) / math.sqrt(len(diffs)):.2g}), "
            f"{sum(d < 0 for d in diffs)}/{len(diffs)} worse"
        )  # fmt: skip
        rows.append(
            f"| {family.name} | {sampler} | {pruner} | {sum(map(len, wrong))} ({early}) / "
            f"{pruned} / {n_trials} | {_mean(third)} | {_mean(list(full.values()))} | {paired} |"
        )
    return rows


def _mean(values: Sequence[float | None]) -> str:
    finite = [v for v in values if v is not None]
    if not finite:
        return "-"
    m = float(np.mean(finite))
    return f"{m:.4g}" if abs(m) >= 100 else f"{m:.4f}"


def raw_path(out: Path, family: str) -> Path:
    return out / "raw" / f"curve_families_{family}.json"


def report(out: Path) -> str:
    """The table of every family saved under ``out``."""
    lines = [
        "# MetaPruner on synthetic learning-curve families (`benchmarks/curve_families.py`)",
        "",
        f"Budget: {BUDGET_TRIALS:g} full trials' worth of steps per study. *wrong (early)*: "
        "pruned trials whose would-be final beat the best completed value at the time (made "
        f"with at most {EARLY_COMPLETED} completed trials); *best*: mean best completed final "
        "at a third of the budget and at the budget (the family's direction); *vs none*: "
        "paired difference at the budget against no pruning with the same sampler and seeds "
        "(positive = better), its standard error, and the runs that ended worse.",
        "",
        "| family | sampler | pruner | wrong (early) / pruned / trials | best @B/3 | best @B "
        "| vs none |",
        "|---|---|---|---|---|---|---|",
    ]
    seeds: set[int] = set()
    for name, family in FAMILIES.items():
        path = raw_path(out, name)
        if path.exists():
            runs = json.loads(path.read_text())["runs"]
            seeds.update(r["seed"] for r in runs)
            lines += family_table(runs, family)
    descriptions = "; ".join(f"`{f.name}`: {f.description}" for f in FAMILIES.values())
    lines += [
        "",
        f"Families: {descriptions}. Seeds: {sorted(seeds)}.",
        "",
        "Command: `python -m benchmarks.curve_families --seeds "
        f"{min(seeds, default=0)}-{max(seeds, default=0)}`",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", help="comma-separated (default: all)")
    parser.add_argument("--samplers", default="random,tpe")
    parser.add_argument("--pruners", default=",".join(DEFAULT_PRUNERS))
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    names = parse_list(args.families) or list(FAMILIES)
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {sorted(FAMILIES)}")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pruners = parse_list(args.pruners) or list(DEFAULT_PRUNERS)
    for name in names:
        runs = [
            run_study(FAMILIES[name], sampler, pruner, seed)
            for sampler in parse_list(args.samplers) or ["random", "tpe"]
            for seed in parse_ints(args.seeds)
            for pruner in pruners
        ]
        path = raw_path(args.out, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"family": name, "optuna": optuna.__version__, "runs": runs}))
        print(f"{name}: {len(runs)} studies", flush=True)
    text = report(args.out)
    (args.out / "curve_families.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
