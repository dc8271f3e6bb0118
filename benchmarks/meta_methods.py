"""optuna-meta's own methods in the benchmark protocols, trained per task-CV fold.

For every CV fold the surrogate is meta-trained on that fold's training tasks only (YAHPO's test
instances are always left out too), so a task is never scored by a model that saw it. Models are
cached on disk by fold and settings (``benchmarks/results/cache/``) so separate processes (the
sampler and pruner protocols) share them.

Run:
    .. code-block:: bash

        python -m benchmarks.run_samplers --scenario lcbench --full \\
            --extra benchmarks.meta_methods:SAMPLER_METHODS -v    # only the extras run
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from optuna.samplers import BaseSampler

from benchmarks.protocol import BenchContext, Method
from optuna_meta import MetaSampler
from optuna_meta.data import TEST_INSTANCES, load_yahpo, yahpo_objective
from optuna_meta.surrogate import SurrogateModel, build_model
from optuna_meta.surrogate._build import dataset_design, learn_task_optima
from optuna_meta.surrogate._design import (
    DEFAULT_DESIGN_LENGTH,
    N_REFINE_STARTS,
    N_TASK_OPTIMUM_STARTS,
)
from optuna_meta.surrogate._model_file import (
    DESIGN_FIXED_TRIALS_KEY,
    HEDGING_DESIGN_FIXED_TRIALS,
)
from optuna_meta.surrogate._train import TrainConfig

CACHE_DIR = Path(__file__).resolve().parent / "results" / "cache"
MODEL_RECIPE = 5
"""Bumped when build_model changes what it produces, so cached fold models are rebuilt."""
N_CONFIGS = 2000
"""Configurations per training task (the shipped model uses the same)."""
SAMPLER_BEHAVIOUR = 12
"""Bumped when MetaSampler proposes differently with the same model (results of another behaviour
are never resumed). 12: oriented values far below the median (``OUTLIER_MADS`` median absolute
deviations) are raised to there before the surrogate's z-scores (session 33): 67 of 170 LCBench CV
runs change after the design, the mean regret by less than 1e-5 at every budget; behaviour 11's
runs are in git history. 11: the default fallback (TPE) is seeded per trial, from the sampler's
seed and the trial number (session 30): every run changes from its first fallback trial (14) on;
behaviour 10's runs are kept as ``meta_s29`` (sampler CV), ``meta_nop_s29`` and
``meta_meta_guard_s29`` (pruner protocol, seeds 0-2). 10: the LCBench fold models' design and
optima follow the shipped recipe of session 29 (:data:`DESIGN_HEDGING`; same networks, sampler code
unchanged). 9: a model whose manifest sets ``design_fixed_trials`` (the hedging design of
:data:`DESIGN_BUDGETS`, session 22) takes its first two design entries in order (in studies without
constraints, session 23; no versioned result has constraints); entries alike in the study's space
count once. 8: only design trials 1-4 may pick a training task's optimum (``TASK_OPTIMA_TRIALS``,
session 19). 7: the design trials after the first may pick a training task's own optimum
(``task_optima``, session 19; LCBench fold models carry them, see :data:`TASK_OPTIMA_SCENARIOS`).
6: the fallback takes every other trial while its interleaved trials improve the study faster than
the surrogate's (``adaptive_fallback``, session 17; a run is identical to the fixed schedule's
until that first happens). 5: after the design every 5th trial goes to the fallback
(``fallback_every``, session 15; runs identical up to trial 14). 4: a proposal within
``MIN_SEPARATION`` of a tried configuration counts as a repeat (session 14; 2 of 170 LCBench runs
differ after trial 50, rbv2_xgboost runs identical, no regret changes). 3: repeats of a trial
detected in conditional spaces (session 13; LCBench runs identical, rbv2_xgboost runs differ from
trial 7 on). 2: design entries after the first ordered by expected improvement (session 10; 1: in
fixed order)."""
COVERAGE_RULE = 2
"""Bumped when the rule for studies the model only partly knows changes. 0: the surrogate
served every parameter it knew, however few (before session 12); 1: ``MIN_KNOWN_PARAMS``; 2:
before a finished trial tells the study's names, those asked so far decide the name being
asked only (session 31; session 30's runs, whose trial 0 took the design's values for every
known name, are kept as ``meta_shipped_mlp_s30``)."""
TASK_OPTIMA_SCENARIOS = frozenset({"lcbench"})
"""Scenarios whose shipped model carries its training tasks' optima, so the fold models do too.
Not rbv2_xgboost: with them its CV runs were +0.0051 (se 0.0021) worse at 3 trials and the same
from 5 on (session 19, ``benchmarks/README.md``)."""
DESIGN_BUDGETS: dict[str, tuple[tuple[float, ...], int]] = {"lcbench": ((5.0, 52.0), -1)}
"""Scenarios whose shipped model learns its design at several budgets, with the fidelities and
the index of the one its first entry is learned at (``optuna-meta train --design-budgets 5,52
--design-first-budget 52``), so the fold models do too (session 22)."""
DESIGN_HEDGING = 1
"""Entries after the first that serve every design budget (``--design-hedging 1``, session 29;
``None``: every one, sessions 22-28); the later entries and the task optima serve the first
entry's budget alone, as the shipped ``lcbench-mlp`` learns them."""
M = TypeVar("M", bound=Any)


def disk_cached(
    stem: str, key: list[Any], load: Callable[[Path], M], build: Callable[[str], M]
) -> M:
    """The model cached at ``CACHE_DIR/<stem>_<digest of key>.npz``, built on a miss.

    ``build(digest)`` makes the model (the digest names it); it is saved atomically, since
    another benchmark process may be loading the cache at the same time.
    """
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = CACHE_DIR / f"{stem}_{digest}.npz"
    if path.is_file():
        return load(path)
    model = build(digest)
    tmp = model.save(path.with_name(f"{path.stem}.tmp{os.getpid()}.npz"))
    tmp.replace(path)
    return model


def fold_training_tasks(scenario: str, train_tasks: tuple[str, ...]) -> list[str]:
    """What a fold's model learns from: its training tasks minus YAHPO's test instances."""
    return sorted(t for t in train_tasks if t not in TEST_INSTANCES[scenario])


def fold_model(
    scenario: str,
    train_tasks: tuple[str, ...],
    config: TrainConfig | None = None,
    n_configs: int = N_CONFIGS,
    design_length: int = DEFAULT_DESIGN_LENGTH,
    budgets: bool = True,
    n_hedging: int | None = DESIGN_HEDGING,
    optima_at_first_budget: bool = True,
) -> SurrogateModel:
    """The surrogate meta-trained on ``train_tasks`` (minus test instances), cached on disk.

    Like the shipped model, it learns its initial design by querying the training tasks only,
    at the budgets of :data:`DESIGN_BUDGETS` (``budgets=False``: at the final fidelity only,
    the recipe before session 22); ``n_hedging`` is ``learn_initial_design``'s and
    ``optima_at_first_budget`` learns the task optima at the design's first budget alone (the
    shipped recipe since session 29; ``None`` and ``False``: sessions 22-28's).
    """
    cfg = config or TrainConfig()
    tasks = fold_training_tasks(scenario, train_tasks)
    key = [MODEL_RECIPE, scenario, tasks, n_configs, vars(cfg), design_length]
    model = disk_cached(
        f"meta_{scenario}",
        key,
        SurrogateModel.load,
        lambda digest: build_model(
            load_yahpo(scenario, n_configs=n_configs, tasks=tasks),
            name=f"{scenario}-cv-{digest}",
            config=cfg,
            design_objective=yahpo_objective(scenario),
            design_length=design_length,
        ),
    )
    if not model.initial_design:
        return model
    space_only = load_yahpo(scenario, n_configs=8, tasks=tasks)  # values come from objectives
    objective = yahpo_objective(scenario)
    if budgets and scenario in DESIGN_BUDGETS:
        # The design at several budgets replaces the one build_model learned at the final
        # fidelity; cached on its own so the network (and every earlier run on it) stays the same.
        fidelities, first = DESIGN_BUDGETS[scenario]
        objective = yahpo_objective(scenario, budgets=fidelities)
        key = [*key, "design_budgets", list(fidelities), first, N_REFINE_STARTS]
        if n_hedging is not None:  # the key of every earlier design stays as it was
            key = [*key, "n_hedging", n_hedging]

        def with_budget_design(digest: str) -> SurrogateModel:
            design = dataset_design(
                space_only,
                objective,
                length=design_length,
                seed=cfg.seed,
                first_budget=first,
                n_hedging=n_hedging,
            )
            return dataclasses.replace(
                model, initial_design=design, defaults={**model.defaults, **design[0]}
            )

        model = disk_cached(
            f"meta_{scenario}_budgets", key, SurrogateModel.load, with_budget_design
        )
        # What build_model(design_first_budget=...) writes; set here so the cached files serve.
        hedging = {**model.manifest, DESIGN_FIXED_TRIALS_KEY: HEDGING_DESIGN_FIXED_TRIALS}
        model = dataclasses.replace(model, manifest=hedging)
    if scenario not in TASK_OPTIMA_SCENARIOS:
        return model
    # The training tasks' optima are what build_model(task_optima=True) adds after training,
    # learned with the design's objective.
    optima_key = [*key, "task_optima", N_TASK_OPTIMUM_STARTS]
    optima_budget = None
    if optima_at_first_budget and budgets and scenario in DESIGN_BUDGETS:
        optima_budget = DESIGN_BUDGETS[scenario][1]
        optima_key.append(f"optima_budget{optima_budget}")
    with_optima = disk_cached(
        f"meta_{scenario}_optima",
        optima_key,
        SurrogateModel.load,
        lambda digest: dataclasses.replace(
            model,
            task_optima=learn_task_optima(
                space_only,
                objective,
                seed=cfg.seed,
                exclude=model.initial_design,
                budget=optima_budget,
            ),
        ),
    )
    # The cached optima files predate the key: the design model's manifest is the one to keep.
    return dataclasses.replace(with_optima, manifest=model.manifest)


def meta_sampler_method(
    name: str = "meta",
    label: str = "MetaSampler (5-fold task CV)",
    config: TrainConfig | None = None,
    n_configs: int = N_CONFIGS,
    design_length: int = DEFAULT_DESIGN_LENGTH,
    budgets: bool = True,
    n_hedging: int | None = DESIGN_HEDGING,
    optima_at_first_budget: bool = True,
    **sampler_kwargs: object,
) -> Method:
    """MetaSampler with one model per fold; ``budgets``, ``n_hedging`` and
    ``optima_at_first_budget`` are :func:`fold_model`'s; ``sampler_kwargs`` go to the
    sampler."""

    def factory(ctx: BenchContext) -> BaseSampler:
        key = ("meta-model", name, ctx.scenario, ctx.train_tasks)
        if key not in ctx.cache:
            ctx.cache[key] = fold_model(
                ctx.scenario,
                ctx.train_tasks,
                config,
                n_configs,
                design_length,
                budgets,
                n_hedging,
                optima_at_first_budget,
            )
        return MetaSampler(model=ctx.cache[key], seed=ctx.seed, **sampler_kwargs)  # type: ignore[arg-type]

    version = f"recipe{MODEL_RECIPE}+design{design_length}+sampler{SAMPLER_BEHAVIOUR}"
    if budgets:  # results from before DESIGN_BUDGETS keep their version
        version += "+budgets" + "".join(
            f"-{scenario}:{fids}:{first}" for scenario, (fids, first) in DESIGN_BUDGETS.items()
        )
    if budgets and (n_hedging, optima_at_first_budget) != (DESIGN_HEDGING, True):
        version += f"+hedging{n_hedging}" + ("+optimafirst" if optima_at_first_budget else "")
    return Method(name=name, factory=factory, label=label, version=version)


SAMPLER_METHODS = [meta_sampler_method()]

FINAL_BUDGET_DESIGN = [
    meta_sampler_method(
        "meta_finaldesign",
        "MetaSampler, design learned at the final fidelity only (sessions 5-21; 5-fold task CV)",
        budgets=False,
    )
]
"""The recipe before session 22, on the same fold networks: the paired baseline of
:data:`DESIGN_BUDGETS`."""

NO_TASK_OPTIMA = [
    meta_sampler_method(
        "meta_notaskoptima",
        "MetaSampler, design entries only (task_optima=False; 5-fold task CV)",
        budgets=False,
        task_optima=False,
    )
]
"""Session 18's behaviour on the same fold networks: the paired baseline of ``task_optima``
(with the design of sessions 5-21, as every variant below)."""

FIXED_SCHEDULE = [
    meta_sampler_method(
        "meta_fixedschedule",
        "MetaSampler, fixed fallback schedule (adaptive_fallback=False; 5-fold task CV)",
        budgets=False,
        adaptive_fallback=False,
        task_optima=False,
    )
]
"""Session 15's behaviour on the same fold models: the paired baseline of ``adaptive_fallback``
(fold models rebuilt from scratch need not reproduce earlier runs bit for bit)."""

HEDGE_ALL = [
    meta_sampler_method(
        "meta_hedgeall",
        "MetaSampler, every design entry after the first hedges for short runs, optima at "
        "both epochs (sessions 22-28's default; 5-fold task CV)",
        n_hedging=None,
        optima_at_first_budget=False,
    )
]
"""Sessions 22-28's recipe on the same fold networks: the paired baseline of
:data:`DESIGN_HEDGING` (its runs were measured as ``meta`` with behaviour 9)."""

DESIGN_HEDGING_VARIANTS = [
    meta_sampler_method(
        "meta_hedge1",
        "MetaSampler, only the second design entry hedges, optima at both epochs (session 29 "
        "variant; 5-fold task CV)",
        n_hedging=1,
        optima_at_first_budget=False,
    ),
    meta_sampler_method(
        "meta_optimafinal",
        "MetaSampler, every entry after the first hedges, optima at the final epoch alone "
        "(session 29 variant; 5-fold task CV)",
        n_hedging=None,
        optima_at_first_budget=True,
    ),
]
"""The two halves of session 29's change, each alone (measured with behaviour 9; the change
itself was measured as ``meta_hedge1_optimafinal``, whose 170 runs the default reproduces)."""

DESIGN_VARIANTS = [
    meta_sampler_method(
        f"meta_design{k}",
        f"MetaSampler, first {k} trials from a 10-entry learned design (5-fold task CV)",
        design_length=10,
        budgets=False,
        n_design_trials=k,
        task_optima=False,
    )
    for k in (0, 3, 5, 10)
]
"""The design-length study behind DEFAULT_DESIGN_LENGTH (``n_design_trials`` 0 = no design)."""

NO_DESIGN = [
    meta_sampler_method(
        "meta_nodesign",
        "MetaSampler(n_design_trials=0) on the default fold models (5-fold task CV)",
        n_design_trials=0,
    )
]
"""What the README's advice for tasks unlike the model's (``n_design_trials=0``) costs on
tasks like them: the default fold models, no design (session 34)."""

SHIPPED_ON_OTHER_SCENARIO = [
    Method(
        name="meta_shipped_mlp",
        factory=lambda ctx: MetaSampler(seed=ctx.seed),  # the shipped default, lcbench-mlp
        label="MetaSampler() with the shipped lcbench-mlp model (not trained on this scenario)",
        version=f"sampler{SAMPLER_BEHAVIOUR}+coverage{COVERAGE_RULE}",
    )
]
"""The drop-in default on a study its model was not trained for (``--scenario rbv2_xgboost``:
the MLP model knows only ``eta``, through the ``learning_rate`` alias)."""
