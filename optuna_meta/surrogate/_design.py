"""A learned initial design: the configurations a new study tries before it has observed anything.

Why: with nothing observed, a surrogate can only rank configurations by its meta-mean, and a
fitted mean is least reliable exactly at its own maximum (the winner's curse). When the training
tasks can be *queried* -- a benchmark such as YAHPO, or any objective a user can re-run -- a
better first guess is the configuration that is good on the training tasks themselves. We follow
the "multiple defaults" recipe (Pfisterer et al., 2018; greedy portfolios, Wistuba et al., 2015):

1. a pool of random configurations is evaluated on every training task and turned into a
   per-task normalised regret ``(best - v) / (best - worst)`` over the pool (capped at 1, and
   negative for a configuration better than the pool's best);
2. entry ``j`` of the design is the pool configuration minimising the mean over tasks of the
   minimum regret among entries ``0..j`` (so later entries complement earlier ones);
3. the best few pool picks for that entry are each refined by a local random search on the
   training tasks (shrinking Gaussian steps in the unit-encoded space), since a random pool caps
   how close a pick can get, and the best refined one is kept. Several starts matter: the
   criterion is rugged (the good region sits at the box's edges for some parameters), and one
   start's result depends a lot on its random steps -- on LCBench (5-fold task CV, design seeds
   0-4) the first entry's held-out regret averaged 0.053 with one start and 0.032 with eight.

An objective may answer at several budgets (say the metric after 5 and after 52 epochs): each
budget of each task then counts as a task of its own, so the design favours configurations good
at every budget. Why: a user's budget is not the benchmark's. LCBench trained 50 epochs over
thousands of rows; a configuration good only after tens of thousands of SGD steps can be
useless in a shorter run (``benchmarks/README.md``, "Real PyTorch MLP runs"). With
``first_budget`` the first entry is learned at one budget alone and the later entries at every
budget: the first trial bets on the benchmark's own regime, and the next ones hedge for a
shorter run.
``build_model`` marks such a model so a study tries the second entry second, whatever the
first trial showed. On real PyTorch MLP runs this keeps the benchmark's first trial and is
ahead of TPE from 2 trials instead of 10, for 0.002-0.005 regret from 3 to 20 trials on
LCBench (``benchmarks/README.md``, "A design that hedges for short runs").

On LCBench with 5-fold task CV this design beats the greedy portfolio of 30,000 random
configurations at every length (``benchmarks/README.md``, "The first trials: a learned initial
design").

Example:
    .. code-block:: python

        from optuna_meta.surrogate._design import learn_initial_design

        def objective(task, configs):  # the task's objective for each configuration
            return [run(task, c) for c in configs]

        design = learn_initial_design(space, {"a": 1.0, "b": 1.0}, objective, length=5)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution

from optuna_meta.space import Box, SpaceEncoder

DesignObjective = Callable[[str, Sequence[Mapping[str, Any]]], Sequence[float] | np.ndarray]
"""``objective(task_name, configs) -> values``: the task's objective (in its own direction),
one value per configuration, or an array ``(n_configs, n_budgets)`` of its values at several
budgets (e.g. epochs), each of which then counts as a task of its own."""

DEFAULT_DESIGN_LENGTH = 10
"""Entries of the learned design. On LCBench (5-fold task CV, ``benchmarks/README.md``) a
10-entry design is equal to a 5-entry one up to 5 trials and better from 10 trials on (regret
@10 0.0034 vs 0.0066, @100 0.0005 vs 0.0008) since each entry is refined from several starts;
with one start, 5 entries were better than 10 at 10-30 trials."""
N_DESIGN_POOL = 20_000
"""Random configurations evaluated on every training task to seed the greedy picks."""
REFINE_RADII = (0.1, 0.05, 0.02, 0.01)
"""Gaussian step sizes (unit space) of the local refinement, coarse to fine."""
REFINE_STEPS_PER_RADIUS = 6
REFINE_CANDIDATES = 64
"""Candidates evaluated on every training task per refinement step."""
N_REFINE_STARTS = 8
"""Best pool picks refined for each entry; the best refined one is kept."""
N_TASK_OPTIMUM_STARTS = 2
"""Refinement starts for each training task's own optimum (:data:`N_REFINE_STARTS` is for the
design, whose criterion over many tasks is more rugged)."""


def learn_initial_design(
    search_space: Mapping[str, BaseDistribution],
    task_signs: Mapping[str, float],
    objective: DesignObjective,
    *,
    length: int = DEFAULT_DESIGN_LENGTH,
    n_pool: int = N_DESIGN_POOL,
    refine: bool = True,
    n_starts: int = N_REFINE_STARTS,
    first_budget: int | None = None,
    n_hedging: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Learn ``length`` configurations to try first on a new task (greedy + local refinement).

    Args:
        search_space: The space the configurations are drawn from (the model's space).
        task_signs: Training task name -> +1 (maximise) or -1 (minimise).
        objective: Evaluates configurations of ``search_space`` on a training task (one value
            each, or one per budget: see :data:`DesignObjective`).
        length: Entries of the design.
        n_pool: Random configurations that seed the greedy choice.
        refine: Refine each greedy pick by local search on the training tasks.
        n_starts: Best pool picks refined for each entry (the best refined one is kept);
            without ``refine`` the best pool pick is taken as it is.
        first_budget: With an objective that answers at several budgets, learn the first
            entry at this budget alone (an index into the objective's budgets; ``-1``: the
            last); the later entries serve every budget. ``None``: every entry serves every
            budget.
        n_hedging: With ``first_budget``, only entries ``1..n_hedging`` serve every budget and
            the later ones ``first_budget`` alone, as the first does; ``None``: every entry
            after the first serves every budget.
        seed: Seed of the pool and of the refinement steps.

    Returns:
        The design, best first: each entry a complete configuration of ``search_space``
        (fewer than ``length`` entries only when the pool is smaller than ``length``).

    Raises:
        ValueError: No task, a non-positive length, pool or number of starts, a negative
            ``n_hedging``, the objective returned the wrong number of values, or
            ``first_budget`` is not one of its budgets.
    """
    if not task_signs:
        raise ValueError("An initial design needs at least one training task.")
    if length < 1 or n_pool < 1 or n_starts < 1:
        raise ValueError(
            f"length, n_pool and n_starts must be positive, got {length}, {n_pool} and {n_starts}."
        )
    if n_hedging is not None and n_hedging < 0:
        raise ValueError(f"n_hedging must be >= 0, got {n_hedging}.")
    encoder = SpaceEncoder(search_space)
    rng = np.random.default_rng(seed)
    box = Box.unit(encoder)
    tasks = list(task_signs)

    def values_of(X: np.ndarray) -> np.ndarray:  # (n_criteria, n) larger-is-better
        configs = encoder.decode(X)
        rows = []
        for t in tasks:
            answer = np.asarray(objective(t, configs), dtype=float)
            v = answer[:, None] if answer.ndim == 1 else answer
            if v.ndim != 2 or len(v) != len(configs):
                raise ValueError(
                    f"The design objective returned values of shape {answer.shape} for "
                    f"{len(configs)} configurations of task {t!r}; expected "
                    f"({len(configs)},) or ({len(configs)}, n_budgets)."
                )
            rows.extend(float(task_signs[t]) * v.T)
        return np.vstack(rows)

    pool = box.clip(rng.random((n_pool, encoder.n_features)))
    pool_values = values_of(pool)
    pool_values = np.where(np.isfinite(pool_values), pool_values, -np.inf)
    top = np.max(pool_values, axis=1, keepdims=True)
    finite_low = np.where(np.isfinite(pool_values), pool_values, np.inf)
    low = np.min(finite_low, axis=1, keepdims=True)
    span = np.where(top > low, top - low, 1.0)

    def regret(values: np.ndarray) -> np.ndarray:
        # Not floored at 0: a refined configuration may beat the pool's best on a task, and
        # that must count, or a small pool would stop the refinement early.
        r = (top - values) / span
        return np.minimum(np.where(np.isfinite(r), r, 1.0), 1.0)

    # Rows of pool_values are (task, budget) pairs, task-major: the rows the first entry serves.
    n_budgets = len(pool_values) // len(tasks)
    first_rows = slice(None)
    if first_budget is not None:
        if not -n_budgets <= first_budget < n_budgets:
            raise ValueError(
                f"first_budget={first_budget} is not one of the objective's {n_budgets} budget(s)."
            )
        first_rows = slice(first_budget % n_budgets, None, n_budgets)

    pool_regret = regret(pool_values)
    # Each configuration on its own, the tie-break of the greedy choice (first entry, others).
    standalone = (pool_regret[first_rows].mean(axis=0), pool_regret.mean(axis=0))
    current = np.full(len(pool_regret), np.inf)
    taken = np.zeros(n_pool, dtype=bool)
    design: list[np.ndarray] = []
    for entry in range(length):
        if taken.all():
            break
        alone = entry == 0 or (n_hedging is not None and entry > n_hedging)
        rows = first_rows if alone else slice(None)
        scores = np.minimum(current[rows, None], pool_regret[rows]).mean(axis=0)
        # Exact ties (no candidate improves the set any more, e.g. with few training tasks):
        # the best configuration on its own, so the design never repeats an entry.
        order = np.lexsort((standalone[0 if alone else 1], scores))
        starts = order[~taken[order]][: n_starts if refine else 1]
        candidates = [(pool[j], pool_regret[:, j], float(scores[j])) for j in starts]
        if refine:
            candidates = [
                _refine(*c, current, regret, values_of, box, rng, rows) for c in candidates
            ]
        k = min(range(len(candidates)), key=lambda i: candidates[i][2])  # first on ties
        x, x_regret, _ = candidates[k]
        taken[starts[k]] = True
        design.append(x)
        current = np.minimum(current, x_regret)
    return encoder.decode(np.vstack(design))


def _refine(
    x: np.ndarray,
    x_regret: np.ndarray,
    best: float,
    current: np.ndarray,
    regret: Callable[[np.ndarray], np.ndarray],
    values_of: Callable[[np.ndarray], np.ndarray],
    box: Box,
    rng: np.random.Generator,
    rows: slice,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Local random search from ``x`` on the mean over ``rows`` (tasks and budgets) of the min
    regret with the set."""
    for radius in REFINE_RADII:
        for _ in range(REFINE_STEPS_PER_RADIUS):
            C = x + rng.normal(0.0, radius, (REFINE_CANDIDATES, len(x)))
            C = box.clip(C)
            R = regret(values_of(C))
            scores = np.minimum(current[rows, None], R[rows]).mean(axis=0)
            k = int(np.argmin(scores))
            if scores[k] < best:
                x, x_regret, best = C[k], R[:, k], float(scores[k])
    return x, x_regret, best
