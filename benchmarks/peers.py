"""Peer methods: Optuna 5 samplers, a coarse grid, and the zero-shot greedy portfolio.

Every peer is a :class:`benchmarks.protocol.Method` whose factory takes a
:class:`benchmarks.protocol.BenchContext`. Only the portfolio reads ``ctx.train_tasks``.

Zero-shot portfolio (Wistuba, Schilling & Schmidt-Thieme 2015; Syne Tune's ``ZeroShot``): a pool
of ``pool_size`` uniform random configurations (``sample_columns``, seed 1) is evaluated on every
task (cached in ``benchmarks/results/cache/``). For a fold, the normalised regret of each pool
configuration on each training task is that of the benchmark (``(ref_max_t - v) / (ref_max_t -
ref_min_t)`` floored at 0, see :mod:`benchmarks.reference`); the greedy list starts empty and
repeatedly appends the configuration that minimises the mean over training tasks of the minimum
regret among the listed configurations (ties: lowest pool index; already listed ones are
excluded). The list has ``length`` entries (default 100 = the full budget);
:class:`PortfolioSampler` proposes them in order and falls back to ``RandomSampler(seed)``
beyond the list.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from benchmarks.objectives import SCENARIO_CONFIGS, all_tasks, get_surrogate
from benchmarks.protocol import BenchContext, Method
from benchmarks.pruning import PrunerMethod
from benchmarks.reference import load_reference, regret_of
from optuna_meta.data._yahpo import columns_to_configs

CACHE_DIR = Path(__file__).resolve().parent / "results" / "cache"
POOL_SEED = 1
DEFAULT_POOL = 30_000
DEFAULT_LENGTH = 100


# -- zero-shot portfolio ---------------------------------------------------------------------
def pool_values(
    scenario: str,
    n: int,
    seed: int = POOL_SEED,
    tasks: Sequence[str] | None = None,
    cache_dir: Path | None = CACHE_DIR,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The pool's columns and its metric on each task (``{task: values}``), cached as .npz."""
    surrogate = get_surrogate(scenario)
    output = SCENARIO_CONFIGS[scenario].output
    columns = surrogate.sample_columns(n, np.random.default_rng(seed))
    wanted = [str(t) for t in (tasks if tasks is not None else all_tasks(scenario))]
    values: dict[str, np.ndarray] = {}
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"pool_{scenario}_{output}_{n}_{seed}.npz"
        if path.is_file():
            with np.load(path) as data:
                values = {k: data[k] for k in data.files}
    missing = [t for t in wanted if t not in values]
    for t in missing:
        values[t] = surrogate.evaluate(t, columns, outputs=[output])[output].astype(np.float32)
    if missing and path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **values)
        tmp.replace(path)
    return columns, {t: values[t] for t in wanted}


def greedy_portfolio(regret: np.ndarray, length: int) -> list[int]:
    """Greedy indices into the pool minimising the mean (over rows) of the min regret so far.

    ``regret`` has shape (n_tasks, n_pool).
    """
    n_tasks, n_pool = regret.shape
    current = np.full(n_tasks, np.inf)
    chosen: list[int] = []
    taken = np.zeros(n_pool, dtype=bool)
    for _ in range(min(length, n_pool)):
        score = np.minimum(current[:, None], regret).mean(axis=0)
        score[taken] = np.inf
        j = int(np.argmin(score))
        chosen.append(j)
        taken[j] = True
        current = np.minimum(current, regret[:, j])
    return chosen


def build_portfolio(
    scenario: str,
    train_tasks: Sequence[str],
    pool_size: int = DEFAULT_POOL,
    length: int = DEFAULT_LENGTH,
    seed: int = POOL_SEED,
    cache_dir: Path | None = CACHE_DIR,
) -> list[dict[str, Any]]:
    """The greedy zero-shot list of configurations learnt from ``train_tasks``."""
    ref = load_reference(scenario)
    columns, values = pool_values(scenario, pool_size, seed, all_tasks(scenario), cache_dir)
    rows = []
    for t in train_tasks:
        r = ref[str(t)]
        rows.append(regret_of(values[str(t)].astype(float), r["max"], r["min"]))
    idx = greedy_portfolio(np.vstack(rows), length)
    picked = {k: np.asarray(col)[idx] for k, col in columns.items()}
    configs = columns_to_configs(picked)
    ints = {h.name for h in get_surrogate(scenario).spec.hyperparameters if h.kind == "int"}
    for cfg in configs:
        for k in ints & set(cfg):
            cfg[k] = round(cfg[k])
    return configs


class PortfolioSampler(BaseSampler):
    """Propose a fixed list of configurations in order (trial ``i`` gets entry ``i``).

    Parameters not in the entry (or beyond the list) come from ``RandomSampler(seed)``.
    """

    def __init__(self, configs: Sequence[Mapping[str, Any]], seed: int | None = None) -> None:
        self._configs = [dict(c) for c in configs]
        self._fallback = optuna.samplers.RandomSampler(seed=seed)

    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        i = trial.number
        if i < len(self._configs) and param_name in self._configs[i]:
            value = self._configs[i][param_name]
            if isinstance(param_distribution, IntDistribution):
                value = round(value)
            elif isinstance(param_distribution, FloatDistribution):
                value = float(value)
            try:
                internal = param_distribution.to_internal_repr(value)
                if param_distribution._contains(internal):
                    return value
            except (ValueError, TypeError):
                pass
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)


def portfolio_method(
    pool_size: int = DEFAULT_POOL,
    length: int = DEFAULT_LENGTH,
    name: str | None = None,
    label: str | None = None,
    cache_dir: Path | None = CACHE_DIR,
) -> Method:
    """The zero-shot portfolio as a method; one list per CV fold, cached in ``ctx.cache``."""

    def factory(ctx: BenchContext) -> BaseSampler:
        key = ("portfolio", pool_size, length, ctx.fold, ctx.train_tasks)
        if key not in ctx.cache:
            ctx.cache[key] = build_portfolio(
                ctx.scenario, ctx.train_tasks, pool_size, length, cache_dir=cache_dir
            )
        return PortfolioSampler(ctx.cache[key], seed=ctx.seed)

    k = f"{pool_size // 1000}k" if pool_size >= 1000 else str(pool_size)
    return Method(
        name=name or f"portfolio{k}",
        factory=factory,
        label=label or f"zero-shot portfolio, {k} candidates (task CV)",
    )


# -- grid ----------------------------------------------------------------------------------------
def coarse_grid(scenario: str) -> dict[str, list[Any]]:
    """The coarse grid of :func:`grid_method`.

    Each numeric parameter takes the centres of ``m`` equal bins of its range (in log space for
    log parameters), ints rounded: ``m = 3`` for LCBench (3^7 = 2187 points), ``m = 2`` for
    rbv2_xgboost (3 boosters x 2^12 = 12,288 points; inactive parameters are simply not
    suggested, so points differing only in them give the same configuration).
    Categorical parameters take every choice.
    """
    m = 3 if scenario == "lcbench" else 2
    grid: dict[str, list[Any]] = {}
    for hp in get_surrogate(scenario).spec.hyperparameters:
        if hp.kind == "categorical":
            grid[hp.name] = list(hp.choices)
            continue
        fr = [(i + 0.5) / m for i in range(m)]
        if hp.log:
            lo, hi = math.log(hp.low), math.log(hp.high)
            pts = [math.exp(lo + f * (hi - lo)) for f in fr]
        else:
            pts = [hp.low + f * (hp.high - hp.low) for f in fr]
        if hp.kind == "int":
            grid[hp.name] = sorted({round(p) for p in pts})
        else:
            grid[hp.name] = [float(p) for p in pts]
    return grid


def grid_method() -> Method:
    def factory(ctx: BenchContext) -> BaseSampler:
        return optuna.samplers.GridSampler(coarse_grid(ctx.scenario), seed=ctx.seed)

    return Method("grid", factory, label="grid (coarse, random order)")


# -- Optuna samplers -------------------------------------------------------------------------
def _random(ctx: BenchContext) -> BaseSampler:
    return optuna.samplers.RandomSampler(seed=ctx.seed)


def _tpe(ctx: BenchContext) -> BaseSampler:
    return optuna.samplers.TPESampler(seed=ctx.seed)


def _gp(ctx: BenchContext) -> BaseSampler:
    return optuna.samplers.GPSampler(seed=ctx.seed)


def _cmaes(ctx: BenchContext) -> BaseSampler:
    return optuna.samplers.CmaEsSampler(seed=ctx.seed)


def _qmc(ctx: BenchContext) -> BaseSampler:
    return optuna.samplers.QMCSampler(seed=ctx.seed)


def sampler_peers(pool_size: int = DEFAULT_POOL) -> dict[str, Method]:
    """Every peer sampler method by name."""
    methods = [
        Method("random", _random),
        Method("tpe", _tpe),
        Method("gp", _gp, label="gp (seeds 0-1, 50 trials)", seeds=(0, 1), n_trials=50),
        Method("cmaes", _cmaes),
        Method("qmc", _qmc),
        grid_method(),
        portfolio_method(pool_size, name="portfolio"),
    ]
    return {m.name: m for m in methods}


CHEAP_SAMPLERS = ("random", "tpe", "qmc", "portfolio")


# -- pruners -----------------------------------------------------------------------------------
def _pruner_method(
    name: str,
    sampler: str,
    make_pruner: Any,
    label: str,
) -> PrunerMethod:
    sampler_cls = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
    }[sampler]

    def factory(ctx: BenchContext) -> tuple[BaseSampler, optuna.pruners.BasePruner]:
        return sampler_cls(seed=ctx.seed), make_pruner()

    return PrunerMethod(
        name=f"{sampler}_{name}",
        factory=factory,
        label=f"{'TPE' if sampler == 'tpe' else 'Random'} + {label}",
        baseline=f"{sampler}_nop",
    )


def pruner_peers() -> dict[str, PrunerMethod]:
    """Every peer (sampler, pruner) method by name: ``<sampler>_<pruner>``."""
    p = optuna.pruners
    specs = [
        ("nop", p.NopPruner, "NopPruner"),
        ("median", p.MedianPruner, "MedianPruner (defaults)"),
        ("percentile25", lambda: p.PercentilePruner(25.0), "PercentilePruner(25)"),
        (
            "sha",
            lambda: p.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
            "SuccessiveHalvingPruner(1, 3)",
        ),
        (
            "hyperband",
            lambda: p.HyperbandPruner(min_resource=1, max_resource=52, reduction_factor=3),
            "HyperbandPruner(1, 52, 3)",
        ),
        (
            "wilcoxon",
            lambda: p.WilcoxonPruner(p_threshold=0.1, n_startup_steps=5),
            "WilcoxonPruner(p=0.1, 5 startup steps)",
        ),
        (
            "patient_median",
            lambda: p.PatientPruner(p.MedianPruner(), patience=3),
            "PatientPruner(MedianPruner, patience=3)",
        ),
    ]
    methods = [_pruner_method(n, "tpe", f, lab) for n, f, lab in specs]
    methods += [_pruner_method(n, "random", f, lab) for n, f, lab in specs[:2]]
    return {m.name: m for m in methods}


CHEAP_PRUNERS = ("tpe_nop", "tpe_median")
