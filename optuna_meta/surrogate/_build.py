"""Turn a meta-dataset into a surrogate model file (the meta-training entry point).

Tasks from different sources name the same hyperparameter differently (``lr`` in one study,
``learning_rate`` in another), so the model's space is built on canonical names: every task's
parameters are renamed through :func:`optuna_meta.space.canonical_name` when that does not
collide (:func:`canonicalize`), and the distributions of one name are widened to cover every
task (:func:`model_space`).

Example:
    .. code-block:: python

        from optuna_meta.data import load_yahpo
        from optuna_meta.surrogate import build_model

        data = load_yahpo("lcbench", n_configs=2000)  # test instances excluded
        model = build_model(data, name="my-lcbench")
        model.save("my-lcbench.npz")
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

import optuna_meta
from optuna_meta.data import MetaDataset, TaskData
from optuna_meta.space import SpaceEncoder, canonical_name, decode_value
from optuna_meta.space._projection import grids_align
from optuna_meta.surrogate._design import (
    DEFAULT_DESIGN_LENGTH,
    N_REFINE_STARTS,
    N_TASK_OPTIMUM_STARTS,
    DesignObjective,
    learn_initial_design,
)
from optuna_meta.surrogate._model_file import (
    DESIGN_FIXED_TRIALS_KEY,
    HEDGING_DESIGN_FIXED_TRIALS,
    SurrogateModel,
)
from optuna_meta.surrogate._network import DeepKernelGP

N_DEFAULT_CANDIDATES = 20_000
"""Random configurations scored by the meta-mean to pick the defaults of untuned parameters."""


def canonical_renames(task: TaskData) -> dict[str, str]:
    """``{task parameter: model parameter}`` for one task (see :func:`canonicalize`)."""
    wanted = {n: canonical_name(n) or n for n in task.search_space}
    counts: dict[str, int] = {}
    for c in wanted.values():
        counts[c] = counts.get(c, 0) + 1
    return {n: (c if counts[c] == 1 else n) for n, c in wanted.items()}


def canonicalize(dataset: MetaDataset) -> MetaDataset:
    """Rename every task's parameters to their canonical names where that is unambiguous.

    ``lr`` in one study and ``learning_rate`` in another become one model parameter. A name
    without a canonical form, or one whose canonical form another parameter of the same task
    also claims, is kept as it is.
    """
    tasks = []
    for task in dataset:
        rename = canonical_renames(task)
        if all(k == v for k, v in rename.items()):
            tasks.append(task)
            continue
        tasks.append(
            TaskData(
                name=task.name,
                search_space={rename[k]: d for k, d in task.search_space.items()},
                params=[{rename.get(k, k): v for k, v in p.items()} for p in task.params],
                values=task.values,
                states=task.states,
                steps=task.steps,
                curves=task.curves,
                direction=task.direction,
                meta_features=task.meta_features,
                objective=task.objective,
                feasible=task.feasible,
            )
        )
    return MetaDataset(tasks)


def model_space(dataset: MetaDataset) -> dict[str, BaseDistribution]:
    """The union of the tasks' search spaces, widened so every task's values fit.

    Past studies may disagree on a parameter (one colleague's ``lr`` on a linear scale, a
    categorical ``n_layers`` beside integer ones). A parameter takes the kind (numerical or
    categorical) that most tasks give it: the values of the other tasks that do not fit it are
    dropped from those trials. A numerical one is on a log scale when any task puts it on one
    and every task's range is positive: a learning rate searched linearly by one study is
    still best modelled in log scale. Each disagreement is warned about, naming the tasks.
    """
    if not len(dataset):
        raise ValueError(
            "The meta-dataset has no tasks: the source holds no usable study (single-objective, "
            "with completed trials)."
        )
    seen: dict[str, list[tuple[str, BaseDistribution]]] = {}
    for task in dataset:
        for name, dist in task.search_space.items():
            seen.setdefault(name, []).append((task.name, dist))
    space: dict[str, BaseDistribution] = {}
    for name, dists in seen.items():
        categorical = [t for t, d in dists if isinstance(d, CategoricalDistribution)]
        kept = [
            d
            for _, d in dists
            if isinstance(d, CategoricalDistribution) == (2 * len(categorical) > len(dists))
        ]
        merged = kept[0]
        for d in kept[1:]:
            merged = _widen(merged, d)
        if 0 < len(categorical) < len(dists):
            others = [
                t
                for t, d in dists
                if (t in categorical) != isinstance(merged, CategoricalDistribution)
            ]
            kind = "categorical" if isinstance(merged, CategoricalDistribution) else "numerical"
            warnings.warn(
                f"Parameter {name!r} is {kind} in {len(dists) - len(others)} of {len(dists)} "
                f"tasks, not in {others}: the model treats it as {kind} ({merged}), and those "
                "tasks' values that are not one of its choices or inside its range are dropped.",
                stacklevel=2,
            )
        logs = {bool(getattr(d, "log", False)) for d in kept}
        if len(logs) > 1:
            assert isinstance(merged, (FloatDistribution, IntDistribution))
            linear = [t for t, d in dists if d in kept and not getattr(d, "log", False)]
            if merged.low > 0:
                merged = type(merged)(merged.low, merged.high, log=True)
            warnings.warn(
                f"Parameter {name!r} is on a log scale in some tasks and a linear one in "
                f"{linear}: the model uses {'a log' if merged.log else 'a linear'} scale "
                f"({merged}).",
                stacklevel=2,
            )
        space[name] = merged
    if not space:
        raise ValueError("The meta-dataset has no parameters to learn from.")
    return space


def _widen(a: BaseDistribution, b: BaseDistribution) -> BaseDistribution:
    """The smallest distribution of ``a``'s kind holding both; a step both share is kept
    when their grids align (studies that all searched ``hidden_size`` in steps of 32 gave a
    model whose default, 253, no study could run; session 32 review)."""
    if isinstance(a, CategoricalDistribution) and isinstance(b, CategoricalDistribution):
        return CategoricalDistribution(list(dict.fromkeys([*a.choices, *b.choices])))
    if isinstance(a, IntDistribution) and isinstance(b, IntDistribution):
        log = a.log and b.log
        step = a.step if grids_align(a, b) and not log else 1
        return IntDistribution(min(a.low, b.low), max(a.high, b.high), log=log, step=step)
    if isinstance(a, (FloatDistribution, IntDistribution)) and isinstance(
        b, (FloatDistribution, IntDistribution)
    ):
        log = bool(a.log and b.log)
        step = None
        if isinstance(a, FloatDistribution) and isinstance(b, FloatDistribution) and not log:
            step = a.step if grids_align(a, b) else None
        low, high = float(min(a.low, b.low)), float(max(a.high, b.high))
        if step is not None:
            with warnings.catch_warnings():  # Optuna trims a range float error makes uneven
                warnings.simplefilter("ignore")
                gridded = FloatDistribution(low, high, step=step)
            if gridded.high >= high - step / 2:
                return gridded
        return FloatDistribution(low, high, log=log)
    return b


DEFAULT_OBSERVED_DESIGN = 5
"""``optuna-meta train --storage`` opens a new study with this many configurations the past
studies ran (:func:`observed_portfolio`, ``--observed-design``); 0 opens it with the best of
random configurations under the meta-mean instead. Measured in session 33
(``benchmarks/README.md``): on LCBench's past studies of 100 random trials, over three
training seeds, 5 was level at 1 trial (0.1112 against 0.1116 regret) and ahead from 10 on
(0.0043 against 0.0062 at 50, se 0.0011); session 32's 0.0760 for 0 was one lucky draw of
its candidates (0.1096 and 0.1493 with the other seeds). On a reviewer's family whose
meta-mean peaks at a range edge, 5 was far ahead at every budget (0.38 against 0.86 at 1
trial, 0.17 against 0.27 at 30, means of the three seeds)."""

MAX_PORTFOLIO_CANDIDATES = 4000
"""Run configurations :func:`observed_portfolio` scores at most: each task's best ones first,
in turn. Its cost grows with candidates times trials; 30 studies of 1,000 trials took 61 s
and 785 MB scoring all 30,000 (session 33)."""

PORTFOLIO_TOLERANCE = 1e-9
"""How much a pick must lower the tasks' mean best regret to join :func:`observed_portfolio`."""

MAX_PORTFOLIO_CONTEXT = 500
"""Trials of a task the GP is conditioned on in :func:`observed_portfolio` at most (a random
subset beyond that): the Cholesky factor grows with their cube."""

MIN_TASK_TRIALS = 8
"""Trials with a value a task needs to be trained on (:func:`task_arrays`)."""


def task_arrays(
    dataset: MetaDataset, encoder: SpaceEncoder, *, min_trials: int = MIN_TASK_TRIALS
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per task: unit-encoded configurations and maximisation-oriented values
    (:func:`_task_rows` without the configurations)."""
    return [(name, X, y) for name, X, y, _ in _task_rows(dataset, encoder, min_trials)]


def _task_rows(
    dataset: MetaDataset, encoder: SpaceEncoder, min_trials: int = MIN_TASK_TRIALS
) -> list[tuple[str, np.ndarray, np.ndarray, list[dict[str, Any]]]]:
    """Per task: unit-encoded configurations, maximisation-oriented values, configurations.

    Completed trials, and pruned ones with their last reported value
    (:meth:`~optuna_meta.data.TaskData.final_values`): a study run with a pruner keeps only its
    survivors otherwise, and a model that never sees the configurations stopped early steers
    new studies back to them (a reviewer's 12 studies under MedianPruner: regret 0.77 at the
    first trial of new tasks, 0.28 with their last values; session 32). A value that is not
    finite (a diverged trial's ``inf``) becomes the task's worst finite value, as MetaSampler
    treats a study's own trials: dropped, it left the model blind to the region that diverges
    (1.88 regret at 1 trial against 0.31). A trial that broke the study's constraints
    (:attr:`~optuna_meta.data.TaskData.feasible`) takes the worst feasible value too, as an
    infeasible trial ranks below every feasible one: a reviewer's studies whose best values
    were infeasible (976 units where 128 were allowed) gave a design of infeasible entries.
    Inactive parameters are encoded at the unit midpoint so the network sees finite inputs;
    a numeric parameter no trial of the task has is completed in the configurations at the
    value the midpoint decodes to (so the first design entry, copied into the model's
    defaults, may set that default too).
    """
    out = []
    for task in dataset:
        oriented = task.sign * task.final_values(use_curves=True)
        usable = ~np.isnan(oriented)  # FAIL trials and pruned ones that reported nothing: NaN
        finite = usable & np.isfinite(oriented)
        if usable.sum() < min_trials or not finite.any():
            why = (
                f"fewer than {min_trials}"
                if usable.sum() < min_trials
                else "and none of the values is finite"
            )
            warnings.warn(
                f"Task {task.name!r} is left out: {int(usable.sum())} completed or pruned "
                f"trials with a value, {why}.",
                stacklevel=2,
            )
            continue
        if task.feasible is not None:
            finite = finite & task.feasible
            if not finite.any():
                warnings.warn(
                    f"Task {task.name!r} is left out: none of its trials met its constraints, "
                    "so its values say nothing of where good feasible configurations are.",
                    stacklevel=2,
                )
                continue
        y = np.where(finite, oriented, np.min(oriented[finite]))[usable]
        params = [p for p, keep in zip(task.params, usable, strict=True) if keep]
        configs = [_fit_params(p, encoder.search_space) for p in params]
        lost = sorted(
            {k for p, c in zip(params, configs, strict=True) for k in p if k not in c}
            & encoder.search_space.keys()
        )
        if lost:  # e.g. 0/1 where other studies have True/False: equal in Python, not here
            n_lost = sum(
                k in p and k not in c for p, c in zip(params, configs, strict=True) for k in lost
            )
            warnings.warn(
                f"Task {task.name!r}: {n_lost} value(s) of {lost} do not fit the model's "
                f"space ({', '.join(f'{k}: {encoder.search_space[k]}' for k in lost)}) and "
                "are left out of its trials.",
                stacklevel=2,
            )
        # A numeric parameter no kept trial of the task has (the study did not tune it, or
        # none of its values fit) is completed at the value the unit midpoint decodes to, so a
        # design entry taken from the task runs what `observed_portfolio` scored: left out,
        # the sampler filled it with the model's default (a reviewer's entry was scored at
        # dropout 0.25 and ran at 0.07). A categorical's midpoint is no choice, and a
        # parameter some trials have is inactive on the others' branch (the trial that runs
        # such an entry lacks it too): both stay missing, encoded at the midpoint.
        fill = {
            k: decode_value(d, 0.5)
            for k, d in encoder.search_space.items()
            if not isinstance(d, CategoricalDistribution) and all(k not in c for c in configs)
        }
        if fill:
            configs = [{**fill, **c} for c in configs]
        X = encoder.encode(configs)
        X = np.where(np.isnan(X), 0.5, X)
        out.append((task.name, X, y, configs))
    if not out:
        raise ValueError(
            f"No task has {min_trials} or more completed or pruned trials with a value."
        )
    return out


def observed_portfolio(
    gp: DeepKernelGP,
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, list[dict[str, Any]]]],
    length: int,
) -> list[dict[str, Any]]:
    """A greedy portfolio of at most ``length`` configurations the past studies ran.

    Why: a model trained from storages has no objective to query for a learned design, and
    the best of random configurations under its meta-mean sits where the mean extrapolates
    (a reviewer's family: a learning rate of 0.64 against optima of 0.03-0.08). Configurations
    that were run are where the data is. Each task's values for every candidate come from the
    meta-trained GP conditioned on that task's own trials (standardised), as normalised
    regret within the task; each pick lowers the tasks' mean best regret most, and the
    portfolio ends early once no candidate lowers it (each task has its best one).
    """
    X_all, configs = _portfolio_candidates(rows)
    regrets = []
    rng = np.random.default_rng(0)
    for _, X, y, _ in rows:
        if len(y) > MAX_PORTFOLIO_CONTEXT:
            keep = np.sort(rng.choice(len(y), MAX_PORTFOLIO_CONTEXT, replace=False))
            X, y = X[keep], y[keep]
        sd = float(np.std(y))
        ys = (y - np.mean(y)) / (sd if sd > 0 else 1.0)
        mean = gp.condition(X, ys).predict(X_all).mean
        span = float(np.max(mean) - np.min(mean))
        regrets.append((np.max(mean) - mean) / (span if span > 0 else 1.0))
    R = np.asarray(regrets)
    best = np.ones(len(R))
    chosen: list[int] = []
    for _ in range(min(length, len(configs))):
        score = np.minimum(best[:, None], R).mean(axis=0)
        score[chosen] = np.inf
        pick = int(np.argmin(score))
        if chosen and not score[pick] < best.mean() - PORTFOLIO_TOLERANCE:
            # Every task has its best candidate already (fewer tasks than ``length``): the
            # rest would tie, and the first in list order is often a near-copy of a pick. A
            # study's next trials are better spent on the surrogate's proposals.
            break
        chosen.append(pick)
        best = np.minimum(best, R[:, pick])
    return [dict(configs[i]) for i in chosen]


def _portfolio_candidates(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, list[dict[str, Any]]]],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The distinct run configurations, at most :data:`MAX_PORTFOLIO_CANDIDATES` of them:
    every task's best, then every task's second best, and so on (in the tasks' order).

    A task's trials at its worst value are left out: the diverged and the infeasible ones
    take that value (:func:`_task_rows`), and none should open a new study.
    """
    order = [
        np.array([i for i in np.argsort(-y, kind="stable") if y[i] > np.min(y)] or [0])
        for _, _, y, _ in rows
    ]
    X_out: list[np.ndarray] = []
    configs: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    for rank in range(max(len(o) for o in order)):
        if len(configs) >= MAX_PORTFOLIO_CANDIDATES:
            break
        for (_, X, _, cs), o in zip(rows, order, strict=True):
            if rank >= len(o) or len(configs) >= MAX_PORTFOLIO_CANDIDATES:
                continue
            x = np.round(X[o[rank]], 9)
            key = x.tobytes()
            if key not in seen:
                seen.add(key)
                X_out.append(X[o[rank]])
                configs.append(cs[o[rank]])
    return np.asarray(X_out), configs


def _fit_params(params: Mapping[str, Any], space: Mapping[str, BaseDistribution]) -> dict:
    from optuna_meta.space import ProjectionError, project_value

    out = {}
    for k, v in params.items():
        dist = space.get(k)
        if dist is None or not _fits_exactly(v, dist):
            continue  # another task's kind of value (model_space warned): dropped, not snapped
        try:
            out[k] = project_value(v, dist)
        except ProjectionError:
            continue
    return out


def _fits_exactly(value: Any, dist: BaseDistribution) -> bool:
    """Whether ``value`` is one of ``dist``'s choices, or a number inside its range."""
    if isinstance(dist, CategoricalDistribution):  # 2 is not the choice "2", nor 2.0 the 2
        return any(value == c and type(value) is type(c) for c in dist.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return False
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    return bool(dist.low <= value <= dist.high)


def build_model(
    dataset: MetaDataset,
    *,
    name: str = "custom",
    config: Any = None,
    log: Callable[[str], None] | None = None,
    extra_manifest: Mapping[str, Any] | None = None,
    design_objective: DesignObjective | None = None,
    design_length: int = DEFAULT_DESIGN_LENGTH,
    design_first_budget: int | None = None,
    design_hedging: int | None = None,
    task_optima: bool = False,
    observed_design: int = DEFAULT_OBSERVED_DESIGN,
) -> SurrogateModel:
    """Meta-train a :class:`SurrogateModel` on every task of ``dataset`` (needs torch).

    With ``design_objective`` (the training tasks' objective, e.g.
    :func:`optuna_meta.data.yahpo_objective`) the model also carries a learned initial design of
    ``design_length`` configurations (:func:`~optuna_meta.surrogate._design.learn_initial_design`),
    which a new study tries first; its first entry also supplies the defaults of parameters a
    study does not tune; ``design_first_budget`` and ``design_hedging`` are
    :func:`learn_initial_design`'s ``first_budget`` and ``n_hedging``. Without one (e.g.
    training from past studies, which cannot be re-run), the design is ``observed_design`` of
    the configurations the studies ran (:func:`observed_portfolio`; default
    :data:`DEFAULT_OBSERVED_DESIGN`), or with ``observed_design=0`` none: the first trial is
    then the best of random configurations under the meta-mean. With
    ``task_optima`` as well, the model also carries each training task's own optimum
    (:func:`learn_task_optima`), which the design trials after the first may pick instead of a
    design entry; with ``design_first_budget`` they are learned at that budget alone, as the
    first entry is: like it, they bet on the benchmark's own regime, and the hedging entries
    cover the others (session 29: with ``design_hedging=1``, 0.0015-0.0033 less regret from 3
    to 30 trials on LCBench, ``benchmarks/README.md``).

    Raises:
        ValueError: ``design_hedging`` without ``design_first_budget``, or negative.
    """
    if design_hedging is not None and design_first_budget is None:
        raise ValueError("design_hedging needs design_first_budget (the budget the others serve).")
    from optuna_meta.surrogate._train import TrainConfig, train_surrogate

    cfg = config or TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(
            f"config must be a TrainConfig (optuna_meta.surrogate._train), got "
            f"{type(cfg).__name__}: e.g. TrainConfig(steps=5)."
        )
    canonical = canonicalize(dataset)
    space = model_space(canonical)
    encoder = SpaceEncoder(space)
    rows = _task_rows(canonical, encoder, MIN_TASK_TRIALS)
    weights, stats = train_surrogate([(X, y) for _, X, y, _ in rows], cfg, log=log)
    gp = DeepKernelGP(weights)
    tasks = [name for name, _, _, _ in rows]
    defaults = _best_average_config(gp, encoder, cfg.seed)
    design: list[dict[str, Any]] = []
    if design_objective is None and observed_design > 0:
        design = observed_portfolio(gp, rows, observed_design)
        defaults.update(design[0])
        if log is not None:
            log(f"chose an initial design of {len(design)} observed configurations")
    elif design_objective is not None and design_length > 0:
        design = _learn_design(
            dataset,
            space,
            design_objective,
            length=design_length,
            seed=cfg.seed,
            tasks=tasks,
            n_starts=N_REFINE_STARTS,
            first_budget=design_first_budget,
            n_hedging=design_hedging,
        )
        defaults.update(design[0])
        if log is not None:
            log(f"learned an initial design of {len(design)} configurations")
    optima: list[dict[str, Any]] = []
    if design and task_optima and design_objective is not None:  # an objective to query
        optima = _learn_task_optima(
            dataset,
            space,
            design_objective,
            seed=cfg.seed,
            tasks=tasks,
            exclude=design,
            budget=design_first_budget,
        )
        if log is not None:
            log(f"learned {len(optima)} training-task optima")
    manifest: dict[str, Any] = {
        "name": name,
        "kind": "deep-kernel-gp",
        "optuna_meta_version": optuna_meta.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training_tasks": tasks,
        "n_training_trials": int(sum(len(y) for _, _, y, _ in rows)),
        "train_config": {k: v for k, v in vars(cfg).items()},
        "train_stats": stats,
        "meta_features": [],
        "initial_design_source": (
            ("objective" if design_objective is not None else "observed") if design else None
        ),
    }
    if design and design_first_budget is not None:
        # The second entry hedges for the budgets the first does not serve: a study tries it
        # second whatever the first trial showed (MetaSampler reads this key).
        manifest[DESIGN_FIXED_TRIALS_KEY] = HEDGING_DESIGN_FIXED_TRIALS
    manifest.update(extra_manifest or {})
    return SurrogateModel(
        weights=weights,
        search_space=space,
        defaults=defaults,
        manifest=manifest,
        initial_design=design,
        task_optima=optima,
    )


def dataset_design(
    dataset: MetaDataset,
    objective: DesignObjective,
    *,
    length: int = DEFAULT_DESIGN_LENGTH,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    n_starts: int = N_REFINE_STARTS,
    first_budget: int | None = None,
    n_hedging: int | None = None,
) -> list[dict[str, Any]]:
    """The learned initial design :func:`build_model` stores, without training a network.

    ``objective`` receives each task's own parameter names; the design is in the canonical
    model space of ``dataset`` (:func:`model_space`). ``tasks`` restricts the training tasks
    (default: all); ``n_starts``, ``first_budget`` and ``n_hedging`` are
    :func:`learn_initial_design`'s.
    Benchmarks use it to score a design on held-out tasks directly.
    """
    space = model_space(canonicalize(dataset))
    return _learn_design(
        dataset,
        space,
        objective,
        length=length,
        seed=seed,
        tasks=tasks,
        n_starts=n_starts,
        first_budget=first_budget,
        n_hedging=n_hedging,
    )


def _learn_design(
    dataset: MetaDataset,
    space: Mapping[str, BaseDistribution],
    objective: DesignObjective,
    *,
    length: int,
    seed: int,
    tasks: Sequence[str] | None,
    n_starts: int,
    first_budget: int | None = None,
    n_hedging: int | None = None,
) -> list[dict[str, Any]]:
    """:func:`learn_initial_design` on ``dataset``'s tasks, ``space`` its canonical model space."""
    renames = {task.name: canonical_renames(task) for task in dataset}
    original = {task.name: task for task in dataset}
    names = list(original) if tasks is None else list(tasks)
    return learn_initial_design(
        space,
        {name: original[name].sign for name in names},
        _in_task_names(objective, original, renames),
        length=length,
        n_starts=n_starts,
        first_budget=first_budget,
        n_hedging=n_hedging,
        seed=seed,
    )


def learn_task_optima(
    dataset: MetaDataset,
    objective: DesignObjective,
    *,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    exclude: Sequence[Mapping[str, Any]] = (),
    budget: int | None = None,
) -> list[dict[str, Any]]:
    """Each training task's own best configuration, in the canonical model space.

    Why: a learned design serves the training tasks *on average*, so a new task unlike most of
    them may find none of its entries good. Its optimum may still lie near one training task's
    own (the "warm start from similar tasks' best configurations" of Feurer et al., 2015), and
    a study's first results tell which: MetaSampler lets the design trials after the first pick
    these by expected improvement too. Each optimum is a one-entry design learned on that task
    alone (the same random pool and local refinement, :data:`N_TASK_OPTIMUM_STARTS` starts), in
    the order of ``tasks`` (default: every task of ``dataset``); repeats, and configurations in
    ``exclude`` (the design), are dropped. With an objective that answers at several budgets,
    ``budget`` (an index into them) learns each optimum at that budget alone; ``None``: at
    every budget.

    Example:
        .. code-block:: python

            from optuna_meta.data import load_yahpo, yahpo_objective
            from optuna_meta.surrogate._build import learn_task_optima

            data = load_yahpo("lcbench", n_configs=8)  # the space; the objective gives values
            optima = learn_task_optima(data, yahpo_objective("lcbench"))
    """
    space = model_space(canonicalize(dataset))
    return _learn_task_optima(
        dataset, space, objective, seed=seed, tasks=tasks, exclude=exclude, budget=budget
    )


def _learn_task_optima(
    dataset: MetaDataset,
    space: Mapping[str, BaseDistribution],
    objective: DesignObjective,
    *,
    seed: int,
    tasks: Sequence[str] | None,
    exclude: Sequence[Mapping[str, Any]],
    budget: int | None = None,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in [task.name for task in dataset] if tasks is None else tasks:
        (optimum,) = _learn_design(
            dataset,
            space,
            objective,
            length=1,
            seed=seed,
            tasks=[name],
            n_starts=N_TASK_OPTIMUM_STARTS,
            first_budget=budget,
        )
        if optimum not in exclude and optimum not in out:
            out.append(optimum)
    return out


def _in_task_names(
    objective: DesignObjective,
    tasks: Mapping[str, TaskData],
    renames: Mapping[str, Mapping[str, str]],
) -> DesignObjective:
    """Wrap ``objective`` so it receives each task's own parameter names and ranges.

    The design asks every training task about the same configurations in turn, and tasks of one
    benchmark share their names and ranges, so the translation is made once per group of alike
    tasks and reused while the configurations stay equal (it was 90% of the time of learning a
    design on LCBench, where the surrogate's own queries are fast).
    """
    groups = {
        name: (tuple(sorted(renames[name].items())), tuple(sorted(task.search_space.items())))
        for name, task in tasks.items()
    }
    seen: list[dict[str, Any]] | None = None  # a copy of the configurations last asked about
    translated: dict[Any, list[dict[str, Any]]] = {}  # their translation, by group

    def wrapped(task_name: str, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        nonlocal seen
        if seen != configs:
            seen = [dict(c) for c in configs]
            translated.clear()
        group = groups[task_name]
        own_configs = translated.get(group)
        if own_configs is None:
            task = tasks[task_name]
            back = {model: own for own, model in renames[task_name].items()}
            own_configs = [
                _fit_params({back[k]: v for k, v in c.items() if k in back}, task.search_space)
                for c in configs
            ]
            translated[group] = own_configs
        return np.asarray(objective(task_name, [dict(c) for c in own_configs]), dtype=float)

    return wrapped


def _best_average_config(gp: DeepKernelGP, encoder: SpaceEncoder, seed: int) -> dict[str, Any]:
    """The best of random configurations under the meta-mean.

    Deliberately no local refinement: the meta-mean is least reliable at its own maximum (the
    winner's curse of an argmax over a fitted function). On LCBench with 5-fold task CV,
    refining each fold model's pick with shrinking local steps raised the first trial's mean
    normalised regret from 0.076 to 0.091. The pick also depends on the candidate draw: other
    seeds of the 20,000 candidates gave 0.087-0.131 (0.104 on average over seeds 0-5),
    so ``seed`` 0's 0.076 is a good draw, not the typical one.
    """
    rng = np.random.default_rng(seed)
    X = rng.random((N_DEFAULT_CANDIDATES, encoder.n_features))
    best = X[np.argmax(gp.meta_mean(X))]
    return encoder.decode(best[None, :])[0]
