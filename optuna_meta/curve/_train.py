"""Meta-training of the curve model (torch), by emulating studies on benchmark learning curves.

One training example imitates one prune check of :class:`~optuna_meta.MetaPruner`:

1. pick a task and a *reporting schedule* shared by all its trials (every step; every k-th
   step, with or without the final step; a random subset of steps; only 2-5 steps);
2. for half of the episodes change the task's curve shapes (time warp, late decay, late drift:
   :func:`_reshape_task`), pick a random monotone transform of the metric (identity, log of the
   error, a power of the error, log of the value) and, for 30 % of the episodes, add noise: the
   model must read the study's own curves, not rely on LCBench's shapes, units or smoothness;
3. draw a *context* of ``m`` completed trials (``m`` log-uniform in 1..200), biased towards good
   ones by a random amount (a study's completed trials are often a sampler's better picks, or
   the survivors of pruning), and normalise exactly as the pruner does
   (:func:`~optuna_meta.curve._features.build_context`; ``T`` is the schedule's last step, or
   for 30 % of the episodes the true final step, as when ``max_resource`` is given);
4. draw query trials (not in the context) and a random cut among their reported steps; the
   features of the partial curve (:func:`~optuna_meta.curve._features.featurize`) are the
   input, the final value in the context's ``a`` units the target.

The network (:mod:`optuna_meta.curve._network`) is fitted by Gaussian negative log-likelihood.
With ``calibration_folds > 0`` (the default: 3) the tasks are also split into that many folds
and a network fitted without each fold predicts the fold's examples: the quantiles of these
held-out errors, by curve fraction, become the model's tail calibration
(:mod:`optuna_meta.curve._calibration`), which MetaPruner reads its probabilities from.
Only this module imports torch; the weights are exported as numpy arrays.

The shipped model is made by one command (LCBench via the YAHPO surrogate, every task except
YAHPO's test instances 167168, 189873, 189906):

.. code-block:: bash

    python -m optuna_meta.curve._train --out optuna_meta/models/lcbench-curve.npz
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optuna_meta.curve._calibration import TailCalibration
from optuna_meta.curve._features import (
    F_INDEX,
    MAX_CONTEXT_CURVES,
    N_FEATURES,
    StudyContext,
    build_context,
    context_sizes,
    featurize,
)
from optuna_meta.curve._model_file import CurveModel
from optuna_meta.curve._network import (
    A_LAST_INDEX,
    MIN_STD,
    WEIGHT_NAMES,
    CurveNetwork,
    init_weights,
)
from optuna_meta.surrogate._train import _require_torch

_Z_98 = 2.054
"""Standard-normal 98 % quantile: the Gaussian puts 2 % of the errors above it."""


@dataclass
class CurveTrainConfig:
    """Hyperparameters of meta-training (defaults: see ``benchmarks/curve_quality.py``)."""

    n_episodes: int = 12_000
    queries_per_episode: int = 16
    hidden: int = 96
    epochs: int = 12
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-5
    seed: int = 0
    calibration_folds: int = 3


# -- emulated studies (numpy) -----------------------------------------------------------------
def _schedule(rng: np.random.Generator, n_steps: int) -> np.ndarray:
    """Indices (0-based) of the steps at which trials report."""
    u = rng.random()
    if u < 0.45:
        idx = np.arange(n_steps)
    elif u < 0.75:
        k = int(rng.choice([2, 3, 4, 5, 8, 10, 13]))
        idx = np.arange(k - 1, n_steps, k)
        if rng.random() < 0.5:
            idx = np.union1d(idx, [n_steps - 1])
    elif u < 0.92:
        idx = np.nonzero(rng.random(n_steps) < rng.uniform(0.1, 0.6))[0]
    else:
        # at most every step: studies that report 2-4 times (once per cross-validation fold)
        size = min(int(rng.integers(2, 6)), n_steps)
        idx = np.sort(rng.choice(n_steps, size=size, replace=False))
    if len(idx) == 0:
        idx = np.array([n_steps - 1])
    return idx


def _transform(rng: np.random.Generator, v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A random increasing transform of values in [lo, hi] (shapes other than LCBench's)."""
    u = rng.random()
    span = hi - lo
    eps = span * 10 ** rng.uniform(-3, -1)
    if u < 0.55:
        return v
    if u < 0.75:
        return -np.log(hi + eps - v)
    if u < 0.9:
        return -((hi + eps - v) ** rng.uniform(0.3, 2.0))
    return np.log(v - lo + eps)


def _reshape_task(rng: np.random.Generator, V: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A random task-level change of curve shape, shared by every trial of the episode.

    Half of the episodes keep LCBench's shapes; the others warp time (curves saturate earlier
    or later), decay late (over-fitting: values fall back towards the bottom of the range), or
    drift late by a trial-dependent amount. The context's curves show the change, so the model
    learns to read how curves evolve in *this* study instead of memorising LCBench's.
    """
    n_steps = V.shape[1]
    u = rng.random()
    frac = np.arange(n_steps) / max(n_steps - 1, 1)
    if u < 0.5:
        return V
    if u < 0.7:
        pos = frac ** math.exp(rng.uniform(-0.7, 0.7)) * (n_steps - 1)
        i0 = np.minimum(pos.astype(np.int64), n_steps - 2)
        w = pos - i0
        return V[:, i0] * (1.0 - w) + V[:, i0 + 1] * w
    t0 = rng.uniform(0.05, 0.6)
    h = np.clip((frac - t0) / (1.0 - t0), 0.0, 1.0) ** rng.uniform(0.5, 2.0)
    per_trial = rng.uniform(0.5, 1.5, (len(V), 1))
    if u < 0.85:
        beta = np.minimum(rng.uniform(0.1, 0.9) * per_trial, 0.95)
        return lo + (V - lo) * (1.0 - beta * h)
    sd = V[:, -1].std()
    drift = rng.uniform(-2.0, 1.0) * (sd if sd > 0 else 1.0) * per_trial * h
    return np.clip(V + drift, lo, hi)


def make_examples(
    curves_by_task: Mapping[str, np.ndarray],
    n_episodes: int,
    queries_per_episode: int,
    seed: int,
    bounds: tuple[float, float] = (0.0, 100.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets (``a`` units) of emulated prune checks; see the module doc.

    ``curves_by_task`` maps a task to its curves ``(n, T)`` (steps 1..T, final = last column,
    larger is better); ``bounds`` is the metric's range (used by the random transforms).
    """
    X, y, _ = _task_examples(curves_by_task, n_episodes, queries_per_episode, seed, bounds)
    return X, y


def _task_examples(
    curves_by_task: Mapping[str, np.ndarray],
    n_episodes: int,
    queries_per_episode: int,
    seed: int,
    bounds: tuple[float, float],
    extras: Mapping[str, np.ndarray] | None = None,
    featurizer: Callable[[StudyContext, np.ndarray, np.ndarray], np.ndarray | None] = featurize,
    n_features: int = N_FEATURES,
    augment: Callable[[np.ndarray, float, float], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`make_examples` plus each example's task (an index into the usable tasks).

    Benchmark variants only, the episodes are drawn exactly as without them:

    * ``extras``: per task an ``(n, k)`` array of inputs of each of its trials (e.g. its
      encoded configuration), appended to the features of the queried trial;
    * ``featurizer``: :func:`~optuna_meta.curve._features.featurize` or a function with its
      signature that returns ``n_features`` inputs (e.g. more features of the context);
    * ``augment(V, lo, hi)``: one more change of each episode's curves ``V`` (context rows
      first, then the queries; steps 1..T), after the shape, transform and noise steps. It
      must draw from a random stream of its own.
    """
    rng = np.random.default_rng(seed)
    tasks, extra = [], []
    for name, c in curves_by_task.items():
        c = np.asarray(c, dtype=np.float64)
        ok = np.all(np.isfinite(c), axis=1)
        if ok.sum() >= 8:
            tasks.append(c[ok])
            extra.append(None if extras is None else np.asarray(extras[name], np.float64)[ok])
    if not tasks:
        raise ValueError("No task has 8 or more finite curves.")
    n_extra = 0 if extras is None else extra[0].shape[1]
    zs = []
    for c in tasks:
        f = c[:, -1]
        zs.append((f - f.mean()) / (f.std() if f.std() > 0 else 1.0))
    X = np.empty((n_episodes * queries_per_episode, n_features + n_extra))
    y = np.empty(n_episodes * queries_per_episode)
    task = np.empty(n_episodes * queries_per_episode, dtype=np.int64)
    n = 0
    lo, hi = bounds
    for _ in range(n_episodes):
        t = int(rng.integers(len(tasks)))
        C, z = tasks[t], zs[t]
        n_cfg, n_steps = C.shape
        m = math.floor(math.exp(rng.uniform(0.0, math.log(MAX_CONTEXT_CURVES + 1))))
        m = max(1, min(m, n_cfg - queries_per_episode))
        keys = rng.uniform(0.0, 3.0) * z + rng.gumbel(size=n_cfg)
        ctx_rows = np.argpartition(-keys, m - 1)[:m]
        qkeys = rng.uniform(0.0, 1.5) * z + rng.gumbel(size=n_cfg)
        qkeys[ctx_rows] = -np.inf
        q_rows = np.argpartition(-qkeys, queries_per_episode - 1)[:queries_per_episode]
        rows = np.concatenate([ctx_rows, q_rows])
        V = _transform(rng, _reshape_task(rng, C[rows], lo, hi), lo, hi)
        if rng.random() < 0.3:
            sd = V[:, -1].std()
            V = V + rng.normal(0.0, rng.uniform(0.0, 0.2) * (sd if sd > 0 else 1.0), V.shape)
        if augment is not None:
            V = augment(V, lo, hi)
        sched = _schedule(rng, n_steps)
        steps = (sched + 1).astype(np.float64)
        T = float(n_steps) if rng.random() < 0.3 else None
        curves = [(steps, V[i, sched]) for i in range(m)]
        ctx = build_context(curves, V[:m, -1], 1.0, T, order=rng.permutation(m))
        if ctx is None:
            continue
        for i in range(m, len(rows)):
            cut = int(rng.integers(len(sched))) + 1
            feat = featurizer(ctx, steps[:cut], V[i, sched[:cut]])
            if feat is None:
                continue
            X[n, :n_features] = feat
            if n_extra:
                X[n, n_features:] = extra[t][rows[i]]
            y[n] = float(ctx.a(V[i, -1]))
            task[n] = t
            n += 1
    return X[:n], y[:n], task[:n]


# -- torch ------------------------------------------------------------------------------------
def torch_forward(params: Mapping[str, Any], xb: Any) -> tuple[Any, Any]:
    """The torch twin of :meth:`CurveNetwork.predict` (mean and std in ``a`` units)."""
    torch = _require_torch()
    x = (xb - params["x_mean"]) / params["x_std"]
    h = torch.nn.functional.silu(x @ params["W1"] + params["b1"])
    h = torch.nn.functional.silu(h @ params["W2"] + params["b2"])
    o = h @ params["W3"] + params["b3"]
    mean = xb[:, A_LAST_INDEX] + o[:, 0]
    std = MIN_STD + torch.nn.functional.softplus(o[:, 1])
    return mean, std


def fit_network(
    X: np.ndarray,
    y: np.ndarray,
    config: CurveTrainConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Fit the network to examples by Gaussian NLL; numpy weights and training statistics."""
    torch = _require_torch()
    cfg = config or CurveTrainConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)  # small matrices: threads cost more than they give
    x_mean = X.mean(axis=0)
    x_std = X.std(axis=0)
    x_std = np.where(x_std > 1e-6, x_std, 1.0)
    init = init_weights(X.shape[1], cfg.hidden, cfg.seed, x_mean, x_std)
    params = {
        k: torch.tensor(v, dtype=torch.float32, requires_grad=k not in ("x_mean", "x_std"))
        for k, v in init.items()
    }
    trainable = [p for k, p in params.items() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(y)
    steps_per_epoch = max(1, n // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    rng = np.random.default_rng(cfg.seed)

    start = time.perf_counter()
    history: list[float] = []
    for epoch in range(cfg.epochs):
        perm = torch.as_tensor(rng.permutation(n))
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            mean, std = torch_forward(params, Xt[idx])
            nll = torch.log(std) + 0.5 * ((yt[idx] - mean) / std) ** 2
            loss = nll.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            history.append(float(loss.detach()))
        if log is not None:
            log(f"epoch {epoch + 1}/{cfg.epochs} nll {np.mean(history[-steps_per_epoch:]):.4f}")
    weights = {k: params[k].detach().numpy().astype(np.float64) for k in WEIGHT_NAMES}
    stats = {
        "final_nll": float(np.mean(history[-steps_per_epoch:])),
        "train_seconds": time.perf_counter() - start,
        "n_examples": float(n),
    }
    return weights, stats


def _n_calibration_folds(cfg: CurveTrainConfig, task: np.ndarray) -> int:
    """Inner task folds of the tail calibration: ``calibration_folds``, at most one a task."""
    return min(cfg.calibration_folds, len(np.unique(task)))


def heldout_errors(
    X: np.ndarray,
    y: np.ndarray,
    task: np.ndarray,
    config: CurveTrainConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> np.ndarray | None:
    """Standardised errors ``(y - mean) / sd`` of each example, predicted by a network fitted
    without its task's fold (``config.calibration_folds`` task folds); ``None`` with fewer
    than two tasks."""
    cfg = config or CurveTrainConfig()
    tasks = np.unique(task)
    k = _n_calibration_folds(cfg, task)
    if k < 2:
        return None
    rng = np.random.default_rng(cfg.seed + 1)
    folds = np.array_split(rng.permutation(tasks), k)
    z = np.empty(len(y))
    for i, fold in enumerate(folds):
        held = np.isin(task, fold)
        weights, _ = fit_network(X[~held], y[~held], cfg)
        mean, sd = CurveNetwork(weights).predict(X[held])
        z[held] = (y[held] - mean) / sd
        if log is not None:
            log(f"calibration fold {i + 1}/{k}: {int(held.sum())} held-out examples")
    return z


def calibrate_tails(
    X: np.ndarray,
    y: np.ndarray,
    task: np.ndarray,
    config: CurveTrainConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
    by_context: bool = False,
) -> tuple[TailCalibration | None, dict[str, Any]]:
    """Tail calibration from networks fitted without some tasks (``config.calibration_folds``).

    The tasks are split into folds; for each, a network fitted on the other folds' examples
    predicts the fold's examples, and the standardised errors ``(y - mean) / sd`` of all folds
    are summarised by :meth:`TailCalibration.fit` (by context size too with ``by_context``).
    ``None`` with fewer than two tasks.
    """
    cfg = config or CurveTrainConfig()
    z = heldout_errors(X, y, task, cfg, log=log)
    if z is None:
        return None, {"folds": 0, "reason": "fewer than two tasks"}
    n = context_sizes(X) if by_context else None
    cal = TailCalibration.fit(z, X[:, F_INDEX], n=n)
    f = np.clip(X[:, F_INDEX], 0.0, 1.0)
    shares = {}
    for lo, hi in ((0.0, 0.08), (0.08, 0.25), (0.25, 0.6), (0.6, 1.01)):
        in_range = (f >= lo) & (f < hi)
        if in_range.any():
            shares[f"{lo:g}-{hi:g}"] = round(float(np.mean(z[in_range] > _Z_98)), 4)
    stats = {
        "folds": _n_calibration_folds(cfg, task),
        "n_errors": len(z),
        "calibrated": cal is not None,  # None: too few errors (TailCalibration.fit)
        "share_above_gaussian_98pc_by_fraction": shares,
    }
    if by_context:
        stats["by_context"] = cal is not None and cal.n is not None
    return cal, stats


def build_curve_model(
    curves_by_task: Mapping[str, np.ndarray],
    config: CurveTrainConfig | None = None,
    *,
    name: str = "custom-curve",
    bounds: tuple[float, float] = (0.0, 100.0),
    log: Callable[[str], None] | None = None,
    extra_manifest: Mapping[str, Any] | None = None,
) -> CurveModel:
    """Meta-train a :class:`CurveModel` on learning curves ``{task: (n, T) array}`` (torch)."""
    import optuna_meta

    cfg = config or CurveTrainConfig()
    if not isinstance(cfg, CurveTrainConfig):
        raise TypeError(f"config must be a CurveTrainConfig, got {type(cfg).__name__}.")
    shapes = {k: np.shape(v) for k, v in curves_by_task.items()}
    flat = {k: shape for k, shape in shapes.items() if len(shape) != 2}
    if flat:
        raise ValueError(
            f"Each task's curves must be a 2-D array (one row per trial, one column per step), "
            f"got shapes {flat}."
        )
    for key in ("n_episodes", "queries_per_episode", "hidden", "epochs", "batch_size"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(cfg, key)}.")
    if cfg.calibration_folds < 0 or cfg.calibration_folds == 1:
        raise ValueError(
            "calibration_folds must be 0 (no calibration) or at least 2 (a network fitted "
            f"without each fold's tasks measures their errors), got {cfg.calibration_folds}."
        )
    t0 = time.perf_counter()
    X, y, task = _task_examples(
        curves_by_task, cfg.n_episodes, cfg.queries_per_episode, cfg.seed, bounds
    )
    if len(y) == 0:
        raise ValueError("The curves gave no training example (every emulated study was empty).")
    gen_s = time.perf_counter() - t0
    if log is not None:
        log(f"{len(y)} examples from {len(curves_by_task)} tasks in {gen_s:.1f}s")
    weights, stats = fit_network(X, y, cfg, log=log)
    stats["example_seconds"] = gen_s
    calibration: dict[str, Any] = {"folds": 0}
    if cfg.calibration_folds > 0:
        t1 = time.perf_counter()
        cal, calibration = calibrate_tails(X, y, task, cfg, log=log)
        if cal is not None:
            weights.update(cal.arrays())
        stats["calibration_seconds"] = time.perf_counter() - t1
    manifest: dict[str, Any] = {
        "name": name,
        "kind": "curve-mlp",
        "optuna_meta_version": optuna_meta.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training_tasks": list(curves_by_task),
        "n_training_curves": int(sum(len(c) for c in curves_by_task.values())),
        "train_config": asdict(cfg),
        "train_stats": stats,
        "tail_calibration": calibration,
    }
    manifest.update(extra_manifest or {})
    return CurveModel(weights=weights, manifest=manifest)


def lcbench_curves(
    tasks: Sequence[str] | None = None,
    n_configs: int = 2000,
    seed: int = 0,
    cache: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """LCBench val_accuracy curves ``{task: (n_configs, 52)}`` from the YAHPO surrogate.

    ``tasks=None``: every task except YAHPO's test instances. With ``cache`` (an ``.npz``
    path), curves already there are reused and new ones added.
    """
    from optuna_meta.data import TEST_INSTANCES, load_yahpo
    from optuna_meta.data._yahpo import YahpoSurrogate

    if tasks is None:
        tasks = [t for t in YahpoSurrogate("lcbench").tasks if t not in TEST_INSTANCES["lcbench"]]
    tasks = [str(t) for t in tasks]
    have: dict[str, np.ndarray] = {}
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as npz:
            have = {k: npz[k] for k in npz.files}
    missing = [t for t in tasks if t not in have]
    if missing:
        data = load_yahpo(
            "lcbench", n_configs, tasks=missing, seed=seed, exclude_test_instances=False
        )
        for task in data:
            have[task.name.split("/", 1)[1]] = task.curves.astype(np.float32)
        if cache is not None:
            path = Path(cache)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.tmp.npz")
            np.savez(tmp, **have)
            tmp.replace(path)
    return {t: have[t] for t in tasks}


def main(argv: Sequence[str] | None = None) -> Path:
    """Command line: meta-train the LCBench curve model (the shipped one by default)."""
    from optuna_meta.data import TEST_INSTANCES

    p = argparse.ArgumentParser(description="Meta-train the LCBench learning-curve model.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-configs", type=int, default=2000, help="random configurations per task")
    p.add_argument("--episodes", type=int, default=CurveTrainConfig.n_episodes)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, help="an .npz to cache the sampled curves in")
    p.add_argument(
        "--calibration-folds",
        type=int,
        default=CurveTrainConfig.calibration_folds,
        help="inner task folds of the tail calibration (0: none)",
    )
    args = p.parse_args(argv)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    cfg = CurveTrainConfig(
        n_episodes=args.episodes, seed=args.seed, calibration_folds=args.calibration_folds
    )
    curves = lcbench_curves(None, args.n_configs, 0, args.cache)
    model = build_curve_model(
        curves,
        cfg,
        name=args.out.stem,
        log=lambda s: print(s, flush=True),
        extra_manifest={
            "command": "python -m optuna_meta.curve._train " + shlex.join(argv_list),
            "data": {
                "source": "YAHPO Gym lcbench surrogate, val_accuracy at epochs 1..52",
                "n_configs_per_task": args.n_configs,
                "excluded_test_instances": list(TEST_INSTANCES["lcbench"]),
            },
        },
    )
    path = model.save(args.out)
    print(f"saved {path}")
    return path


if __name__ == "__main__":
    main()
