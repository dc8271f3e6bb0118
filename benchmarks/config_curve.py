"""A MetaPruner variant whose curve model also reads the trial's hyperparameters (not adopted).

Issue 4 allows the curve model to read "optionally its hyperparameters". Session 24 found the
shipped model's predicted finals optimistic for trials it stops early (``pruned_values``): it
sees the curve, not the configuration, so a learning rate of 1e-4 that crawls looks like any
slow starter. This variant is the most favourable test of the idea: on LCBench the trial's
parameters have exactly the training data's names and ranges, so its seven LCBench
hyperparameters, encoded to ``[0, 1]`` by :class:`~optuna_meta.space.SpaceEncoder`, are
appended to the curve features of every training example (the same emulated studies, drawn
by the same random stream: ``_task_examples(..., extras=...)``) and of every prune check
(:meth:`MetaPruner._features`). Fold models are trained on each CV fold's training tasks, as
the default's (``benchmarks.meta_pruner_methods``), with the same training settings and tail
calibration, and cached in ``benchmarks/results/cache/curve_config_lcbench_<digest>.npz``.

A product version would also need user spaces that name only some of these parameters, or
none, and ranges unlike LCBench's (a masked input per parameter); the variant skips that
because on LCBench it is the best case.

Run (34 tasks, seeds 0-2; ``tpe_nop`` / ``meta_nop`` must be saved for the speed-up):

.. code-block:: bash

    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.config_curve:METHODS

Prediction errors of both models on each fold's held-out tasks (the training's emulated
studies, drawn on those tasks): ``python -m benchmarks.config_curve`` writes
``benchmarks/results/config_curve_lcbench.md``.

The results and the decision are in ``benchmarks/README.md``, "A curve model that reads the
hyperparameters: tried, not adopted".
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from benchmarks.meta_methods import CACHE_DIR, N_CONFIGS, disk_cached, fold_training_tasks
from benchmarks.meta_pruner_methods import (
    CURVES_CACHE,
    TPE_DEFAULT,
    TRAINING_VERSION,
    _sampler,
    _version,
    fold_curve_model,
)
from benchmarks.objectives import all_tasks, scored_tasks
from benchmarks.protocol import DEFAULT_FOLDS, FOLD_SEED, BenchContext, task_folds
from benchmarks.pruning import PrunerMethod
from optuna_meta import MetaPruner
from optuna_meta.curve import FEATURE_NAMES, StudyContext
from optuna_meta.curve._calibration import TailCalibration
from optuna_meta.curve._features import F_INDEX, N_COUNT_REF, N_FEATURES, featurize
from optuna_meta.curve._network import CurveNetwork
from optuna_meta.curve._train import (
    CurveTrainConfig,
    _task_examples,
    calibrate_tails,
    fit_network,
    lcbench_curves,
)
from optuna_meta.space import SpaceEncoder

CONFIGS_CACHE = CACHE_DIR / f"configs_lcbench_{N_CONFIGS}_0.npz"
"""The encoded configurations of the sampled training curves (rows aligned with them)."""

VARIANT_VERSION = 1
"""Bumped whenever the variant's inputs or training change (invalidates its cached models)."""


def lcbench_encoder() -> SpaceEncoder:
    """The unit encoding of LCBench's seven hyperparameters (the variant's extra inputs)."""
    from optuna_meta.data._yahpo import YahpoSurrogate

    return SpaceEncoder(YahpoSurrogate("lcbench").search_space())


def lcbench_configs(tasks: list[str]) -> dict[str, np.ndarray]:
    """Encoded configurations ``{task: (N_CONFIGS, 7)}`` of the curves of ``lcbench_curves``.

    They are sampled again (same seed, hence the same configurations) and checked against the
    cached curves row by row, then cached themselves.
    """
    from optuna_meta.data import load_yahpo

    have: dict[str, np.ndarray] = {}
    if CONFIGS_CACHE.is_file():
        with np.load(CONFIGS_CACHE, allow_pickle=False) as npz:
            have = {k: npz[k] for k in npz.files}
    missing = [t for t in tasks if t not in have]
    if missing:
        curves = lcbench_curves(missing, N_CONFIGS, 0, CURVES_CACHE)
        encoder = lcbench_encoder()
        data = load_yahpo(
            "lcbench", N_CONFIGS, tasks=missing, seed=0, exclude_test_instances=False
        )
        for task in data:
            name = task.name.split("/", 1)[1]
            if not np.array_equal(task.curves.astype(np.float32), curves[name]):
                raise RuntimeError(f"task {name}: configurations do not match the cached curves")
            have[name] = encoder.encode(task.params)
        tmp = CONFIGS_CACHE.with_name(f"{CONFIGS_CACHE.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, **have)
        tmp.replace(CONFIGS_CACHE)
    return {t: have[t] for t in tasks}


class _Weights:
    """A fold model of the variant: the curve network's arrays with a tail calibration.

    Not a :class:`~optuna_meta.curve.CurveModel`: its network has more inputs than the
    feature layout, which the model file loader rightly refuses.
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights

    def save(self, path: Path) -> Path:
        np.savez(path, **self.weights)
        return path

    @classmethod
    def load(cls, path: Path) -> _Weights:
        with np.load(path, allow_pickle=False) as npz:
            return cls({k: npz[k] for k in npz.files})


def train_variant(tasks: list[str], **example_kwargs: Any) -> dict[str, np.ndarray]:
    """A curve variant's network weights and tail calibration, trained as the default is.

    On LCBench's curves of ``tasks``, with the default's settings and emulated studies;
    ``example_kwargs`` go to ``_task_examples`` (``extras``, ``featurizer``, ``augment``...).
    """
    cfg = CurveTrainConfig()
    curves = lcbench_curves(tasks, N_CONFIGS, 0, CURVES_CACHE)
    X, y, task = _task_examples(
        curves, cfg.n_episodes, cfg.queries_per_episode, cfg.seed, (0.0, 100.0), **example_kwargs
    )
    weights, _ = fit_network(X, y, cfg)
    cal, _ = calibrate_tails(X, y, task, cfg)
    if cal is None:
        raise RuntimeError("the variant's tail calibration failed")
    weights.update(cal.arrays())
    return weights


def fold_config_model(train_tasks: tuple[str, ...]) -> _Weights:
    """The variant's curve network for a CV fold (trained on its tasks minus test instances)."""
    cfg = CurveTrainConfig()
    tasks = fold_training_tasks("lcbench", train_tasks)

    def build(digest: str) -> _Weights:
        return _Weights(train_variant(tasks, extras=lcbench_configs(tasks)))

    key = [tasks, N_CONFIGS, vars(cfg), list(FEATURE_NAMES), TRAINING_VERSION, VARIANT_VERSION]
    return disk_cached("curve_config_lcbench", key, _Weights.load, build)


class ConfigCurvePruner(MetaPruner):
    """MetaPruner whose network also reads the trial's encoded LCBench configuration."""

    def __init__(self, weights: dict[str, np.ndarray], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._weights = weights
        self._encoder = lcbench_encoder()

    def _network(self) -> tuple[CurveNetwork, TailCalibration | None]:
        if self._net is None:
            self._net = (CurveNetwork(self._weights), TailCalibration.from_arrays(self._weights))
        return self._net

    def _features(
        self, ctx: StudyContext, trial: FrozenTrial, steps: np.ndarray, values: np.ndarray
    ) -> np.ndarray | None:
        x = featurize(ctx, steps, values)
        if x is None:
            return None
        u = self._encoder.encode([trial.params])[0]
        return np.concatenate([x, np.where(np.isnan(u), 0.5, u)])


def config_pruner_method(sampler: str) -> PrunerMethod:
    """``(sampler, ConfigCurvePruner)`` with the variant's network of the run's CV fold."""

    def factory(ctx: BenchContext):
        key = ("config-curve-model", ctx.train_tasks)
        if key not in ctx.cache:
            ctx.cache[key] = fold_config_model(ctx.train_tasks)
        return _sampler(sampler, ctx), ConfigCurvePruner(ctx.cache[key].weights)

    label = {"tpe": "TPE", "meta": "MetaSampler", "random": "Random"}[sampler]
    return PrunerMethod(
        f"{sampler}_meta_config",
        factory,
        label=f"{label} + MetaPruner() [curve model also reads the 7 LCBench hyperparameters; "
        "session 25 variant, not adopted; 5-fold task CV]",
        baseline=f"{sampler}_nop",
        version=f"{_version(sampler)}+config{VARIANT_VERSION}",
    )


TPE_DEFAULT_RERUN = PrunerMethod(
    "tpe_meta_rerun25",
    TPE_DEFAULT.factory,
    label="TPE + MetaPruner() [defaults; rerun in session 25 on the benchmark cache's current "
    "fold curve models, the variant's control; 5-fold task CV]",
    baseline="tpe_nop",
    version=TPE_DEFAULT.version,
)
"""The TPE default again, on the fold curve models the cache holds now.

The committed ``tpe_meta_default`` runs (session 13) were made with fold models that the cache
no longer holds, and today's code and cache do not reproduce them (0 of 102 runs), so the
variant is paired against this rerun. Its means equal those session 9 measured on seeds 0-2
(0.1264 / 0.0895 / 0.0568 / 0.0452)."""
TPE_CONFIG = config_pruner_method("tpe")
META_CONFIG = config_pruner_method("meta")
METHODS = [TPE_DEFAULT_RERUN, TPE_CONFIG, META_CONFIG]


RESULTS = Path(__file__).resolve().parent / "results"
FRACTION_BINS = ((0.0, 0.08), (0.08, 0.25), (0.25, 0.6), (0.6, 1.01))
"""Curve fraction seen (1-4, 5-12, 13-31 and 32-52 of 52 epochs with every epoch reported)."""
CONTEXT_BINS = ((1, 6), (6, 30), (30, 10_000))
"""Completed trials in the emulated study's context."""


def held_out_errors(
    n_episodes: int,
    seed: int,
    name: str,
    example_kwargs: Callable[[list[str]], dict[str, Any]],
    variant_weights: Callable[[tuple[str, ...]], dict[str, np.ndarray]],
    extra_columns: Callable[[np.ndarray], dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """The default and a variant (``name``) on emulated prune checks of each fold's held-out
    tasks, both trained without them.

    ``example_kwargs(fold_tasks)`` gives the variant's ``_task_examples`` arguments (its
    inputs follow the default's :data:`N_FEATURES`), ``variant_weights(train_tasks)`` its
    network. Per example: the fraction seen, the context size, ``extra_columns(x)`` and, per
    model, the absolute error and Gaussian negative log-likelihood of the final value in the
    features' ``a`` units.
    """
    scored = scored_tasks("lcbench")
    pool = all_tasks("lcbench")
    cfg = CurveTrainConfig()
    out: list[dict[str, Any]] = []
    for fold_tasks in task_folds(scored, DEFAULT_FOLDS, FOLD_SEED):
        train = tuple(t for t in pool if t not in fold_tasks)
        curves = lcbench_curves(list(fold_tasks), N_CONFIGS, 0, CURVES_CACHE)
        X, y, _ = _task_examples(
            curves,
            n_episodes,
            cfg.queries_per_episode,
            seed,
            (0.0, 100.0),
            **example_kwargs(list(fold_tasks)),
        )
        nets = {
            "default": (fold_curve_model(train).network(), X[:, :N_FEATURES]),
            name: (CurveNetwork(variant_weights(train)), X),
        }
        n_ctx = np.expm1(X[:, FEATURE_NAMES.index("n_completed")] * math.log1p(N_COUNT_REF))
        errs = {}
        for key, (net, inputs) in nets.items():
            mu, sd = net.predict(inputs)
            errs[key] = (np.abs(y - mu), np.log(sd) + 0.5 * ((y - mu) / sd) ** 2)
        for i in range(len(y)):
            row = {"f": float(X[i, F_INDEX]), "m": round(float(n_ctx[i]))}
            if extra_columns is not None:
                row.update(extra_columns(X[i]))
            for key, (ae, nll) in errs.items():
                row[f"{key}_ae"] = float(ae[i])
                row[f"{key}_nll"] = float(nll[i]) + 0.5 * math.log(2 * math.pi)
            out.append(row)
    return out


def prediction_errors(n_episodes: int, seed: int) -> list[dict[str, Any]]:
    """Both models on the emulated prune checks of each fold's held-out tasks."""
    return held_out_errors(
        n_episodes,
        seed,
        "config",
        lambda fold_tasks: {"extras": lcbench_configs(fold_tasks)},
        lambda train: fold_config_model(train).weights,
    )


def error_table(
    rows: Sequence[dict[str, Any]],
    header: str,
    variant: str,
    bin_title: str,
    bins: Callable[[dict[str, np.ndarray]], list[tuple[str, np.ndarray]]],
) -> str:
    """Mean absolute error and NLL of the default and ``variant`` by curve fraction and by
    ``bins(columns)``: labelled masks over the examples (``columns``: each row key's array)."""
    lines = [
        header,
        "",
        f"| fraction seen | {bin_title} | examples | MAE default | MAE {variant} | "
        f"NLL default | NLL {variant} |",
        "|---|---|---|---|---|---|---|",
    ]
    if not rows:
        return "\n".join(lines) + "\n"
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    f = cols["f"]
    for flo, fhi in FRACTION_BINS:
        for label, in_bin in bins(cols):
            sel = (f >= flo) & (f < fhi) & in_bin
            if not sel.any():
                continue
            vals = [float(cols[k][sel].mean()) for k in ("default_ae", f"{variant}_ae")]
            vals += [float(cols[k][sel].mean()) for k in ("default_nll", f"{variant}_nll")]
            lines.append(
                f"| {flo:g}-{min(fhi, 1.0):g} | {label} | {int(sel.sum())} | "
                + " | ".join(f"{v:.4f}" for v in vals)
                + " |"
            )
    return "\n".join(lines) + "\n"


def report(rows: Sequence[dict[str, Any]], header: str) -> str:
    """Mean absolute error and NLL of both models by curve fraction and context size."""

    def by_context(cols: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        m = cols["m"]
        out = [(f"{lo}-{hi - 1}", (m >= lo) & (m < hi)) for lo, hi in CONTEXT_BINS]
        return [*out, ("all", (m >= 1) & (m < 10_000))]

    return error_table(rows, header, "config", "completed trials", by_context)


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=2000, help="emulated studies per fold")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "config_curve_lcbench.md")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1; got {args.episodes}")
    rows = prediction_errors(args.episodes, args.seed)
    header = (
        "# Curve model with the 7 LCBench hyperparameters as inputs vs the default "
        "(session 25)\n\n"
        "Each fold's models (trained without the fold's tasks) on emulated prune checks of the "
        f"fold's held-out tasks ({args.episodes} emulated studies per fold, 16 queries each, "
        "seed "
        f"{args.seed}; the training's episode generator). Errors of the final value in the "
        "features' `a` units (asinh of scales from the context's median); NLL of the network's "
        "Gaussian in the same units (lower is better).\n\n"
        f"Command: `python -m benchmarks.config_curve --episodes {args.episodes} "
        f"--seed {args.seed}`"
    )
    args.out.write_text(report(rows, header))
    print(args.out.read_text())
    return args.out


if __name__ == "__main__":
    main()
