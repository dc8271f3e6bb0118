"""A MetaPruner variant whose curve model also reads how well early ranks hold in the study.

Why: on real PyTorch curves (``benchmarks/real_mlp_pruning.py``) TPE + MetaPruner trails
MedianPruner from 400 epochs. The shadow decisions of ``benchmarks/confirm_pruner.py`` show
the brake: after 1 of 20 epochs MetaPruner stops 0.7 trials a run where MedianPruner stops 5.1,
and the calibrated tail is not the cause (without it: 0.9). The network learned on LCBench how
uncertain a final value is after a few epochs; in a study whose completed curves keep their
early order it could be surer, and in one whose curves cross it should not be.

The variant appends three in-context features, computed at the queried trial's fraction ``f``
from the study's completed curves (in the features' ``a`` units):

* ``ctx_rho``: Spearman's rank correlation of their values at ``f`` with their finals;
* ``ctx_lin_final``: the final that a least-squares line through (value at ``f``, final) of
  the completed trials gives the queried trial's last value, kept within two units of the
  completed finals' range;
* ``ctx_lin_resid``: the log of that line's residual standard deviation (its uncertainty).

With fewer than :data:`MIN_RANK_CURVES` completed curves, or when their values at ``f`` are all
equal, they are 0, the context's median final and the log of the finals' spread. Nothing else
changes: the same emulated studies (the training's random stream is untouched,
``_task_examples(featurizer=...)``), training settings and tail calibration; fold models for
the LCBench CV protocol and one model on every LCBench task but YAHPO's test instances (as the
shipped one) for the real curves, cached in ``benchmarks/results/cache/``.

Run::

    python -m benchmarks.rank_context  # prediction errors on each fold's held-out tasks
    python -m benchmarks.real_mlp_pruning --seeds 0-9 --pruners meta_rank \\
        --out benchmarks/results/seeds0-9
    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.rank_context:METHODS  # the variant and its control
    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.rank_context:META_METHODS  # the same with MetaSampler

The results and the decision are in ``benchmarks/README.md``, "Early-rank reliability as an
input".
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial
from scipy.stats import rankdata

from benchmarks.config_curve import _Weights, error_table, held_out_errors, train_variant
from benchmarks.meta_methods import N_CONFIGS, disk_cached, fold_training_tasks
from benchmarks.meta_pruner_methods import (
    META_DEFAULT,
    TPE_DEFAULT,
    TRAINING_VERSION,
    _sampler,
    _version,
)
from benchmarks.objectives import all_tasks
from benchmarks.protocol import BenchContext
from benchmarks.pruning import PrunerMethod
from optuna_meta import MetaPruner
from optuna_meta.curve import FEATURE_NAMES, StudyContext
from optuna_meta.curve._calibration import TailCalibration
from optuna_meta.curve._features import F_INDEX, N_FEATURES, _at, featurize
from optuna_meta.curve._network import A_LAST_INDEX, CurveNetwork
from optuna_meta.curve._train import (
    CurveTrainConfig,
)

RANK_FEATURES = ("ctx_rho", "ctx_lin_final", "ctx_lin_resid")
N_RANK_FEATURES = N_FEATURES + len(RANK_FEATURES)
MIN_RANK_CURVES = 3
"""Completed curves needed for a rank correlation and a line (fewer: neutral values)."""
RESID_FLOOR = 1e-3
"""Smallest residual standard deviation (``a`` units) before its log."""
LINE_MARGIN = 2.0
"""The line's prediction is clipped to the completed finals' range widened by this (``a``)."""
VARIANT_VERSION = 1
"""Bumped whenever the variant's inputs or training change (invalidates its cached models)."""
RESULTS = Path(__file__).resolve().parent / "results"


def rank_context(ctx: StudyContext, f: float, a_last: float) -> np.ndarray:
    """The three in-context features of a trial at fraction ``f`` with last value ``a_last``."""
    fin = ctx.finals_a
    spread = float(fin.std()) if len(fin) > 1 else 1.0
    neutral = np.array(
        [0.0, float(np.median(fin)), math.log(max(spread, RESID_FLOOR))], dtype=np.float64
    )
    if len(fin) < MIN_RANK_CURVES:
        return neutral
    at_f = _at(ctx.curves, np.array([f]))[:, 0]
    sx = float(at_f.std())
    if sx <= 1e-9:
        return neutral
    rx, ry = rankdata(at_f), rankdata(fin)  # average ranks of ties, as Spearman's needs
    srx, sry = float(rx.std()), float(ry.std())
    rho = float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (srx * sry)) if sry > 0 else 0.0
    beta = float(np.mean((at_f - at_f.mean()) * (fin - fin.mean()))) / sx**2
    alpha = float(fin.mean()) - beta * float(at_f.mean())
    resid = fin - (alpha + beta * at_f)
    sd = math.sqrt(float(resid @ resid) / (len(fin) - 2))
    line = alpha + beta * a_last
    line = min(max(line, float(fin.min()) - LINE_MARGIN), float(fin.max()) + LINE_MARGIN)
    return np.array([rho, line, math.log(max(sd, RESID_FLOOR))], dtype=np.float64)


def rank_featurize(ctx: StudyContext, steps: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """:func:`~optuna_meta.curve._features.featurize` followed by :func:`rank_context`."""
    x = featurize(ctx, steps, values)
    if x is None:
        return None
    return np.concatenate([x, rank_context(ctx, float(x[F_INDEX]), float(x[A_LAST_INDEX]))])


def _build(tasks: list[str]) -> _Weights:
    return _Weights(train_variant(tasks, featurizer=rank_featurize, n_features=N_RANK_FEATURES))


def rank_model(train_tasks: tuple[str, ...]) -> _Weights:
    """The variant's network trained on ``train_tasks`` minus YAHPO's test instances (cached)."""
    tasks = fold_training_tasks("lcbench", train_tasks)
    key = [
        tasks,
        N_CONFIGS,
        vars(CurveTrainConfig()),
        [*FEATURE_NAMES, *RANK_FEATURES],
        TRAINING_VERSION,
        VARIANT_VERSION,
    ]
    return disk_cached("curve_rank_lcbench", key, _Weights.load, lambda _: _build(tasks))


def shipped_like_model() -> _Weights:
    """The variant trained as the shipped model is: every LCBench task but the test instances."""
    return rank_model(tuple(all_tasks("lcbench")))


class RankContextPruner(MetaPruner):
    """MetaPruner whose network also reads :data:`RANK_FEATURES` of the study's context."""

    def __init__(self, weights: dict[str, np.ndarray], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._weights = weights

    def _network(self) -> tuple[CurveNetwork, TailCalibration | None]:
        if self._net is None:
            self._net = (CurveNetwork(self._weights), TailCalibration.from_arrays(self._weights))
        return self._net

    def _features(
        self, ctx: StudyContext, trial: FrozenTrial, steps: np.ndarray, values: np.ndarray
    ) -> np.ndarray | None:
        return rank_featurize(ctx, steps, values)


def rank_pruner_method(sampler: str) -> PrunerMethod:
    """``(sampler, RankContextPruner)`` with the variant's network of the run's CV fold."""

    def factory(ctx: BenchContext):
        key = ("rank-curve-model", ctx.train_tasks)
        if key not in ctx.cache:
            ctx.cache[key] = rank_model(ctx.train_tasks)
        return _sampler(sampler, ctx), RankContextPruner(ctx.cache[key].weights)

    label = {"tpe": "TPE", "meta": "MetaSampler"}[sampler]
    return PrunerMethod(
        f"{sampler}_meta_rank",
        factory,
        label=f"{label} + MetaPruner() [curve model also reads the study's early-rank "
        "reliability; session 26 variant; 5-fold task CV]",
        baseline=f"{sampler}_nop",
        version=f"{_version(sampler)}+rank{VARIANT_VERSION}",
    )


TPE_RANK = rank_pruner_method("tpe")
META_RANK = rank_pruner_method("meta")


TPE_DEFAULT_RERUN = PrunerMethod(
    "tpe_meta_rerun26",
    TPE_DEFAULT.factory,
    label="TPE + MetaPruner() [defaults; rerun in session 26 on a rebuilt benchmark cache, the "
    "variant's control; 5-fold task CV]",
    baseline="tpe_nop",
    version=TPE_DEFAULT.version,
)
"""The TPE default on the fold curve models of a rebuilt cache (the variant's control).

Fold models retrained on another machine differ slightly (their runs diverge from
``tpe_meta_rerun25`` after the first pruning decisions), so the variant is paired with this
rerun, made with the same fold models as its own runs' defaults."""
META_DEFAULT_RERUN = PrunerMethod(
    "meta_meta_rerun26",
    META_DEFAULT.factory,
    label="MetaSampler + MetaPruner() [defaults; rerun in session 26 on a rebuilt benchmark "
    "cache, the variant's control; 5-fold task CV]",
    baseline="meta_nop",
    version=META_DEFAULT.version,
)
"""The MetaSampler default on the rebuilt cache's fold models (the MetaSampler variant's
control, for the same reason as :data:`TPE_DEFAULT_RERUN`)."""
METHODS = [TPE_DEFAULT_RERUN, TPE_RANK]
META_METHODS = [META_DEFAULT_RERUN, META_RANK]


def real_curve_pruner() -> RankContextPruner:
    """The variant for ``real_mlp_pruning`` (the model trained as the shipped one is)."""
    return RankContextPruner(shipped_like_model().weights)


def prediction_errors(n_episodes: int, seed: int) -> list[dict[str, Any]]:
    """Both models on emulated prune checks of each fold's held-out tasks, with each
    example's context rank correlation (``rho``)."""
    return held_out_errors(
        n_episodes,
        seed,
        "rank",
        lambda _: {"featurizer": rank_featurize, "n_features": N_RANK_FEATURES},
        lambda train: rank_model(train).weights,
        lambda x: {"rho": float(x[N_FEATURES])},
    )


RHO_BINS = ((-1.01, 0.5), (0.5, 0.8), (0.8, 1.01))
"""Rank correlation of the context's values at ``f`` with their finals (with ``m >= 3``)."""


def report(rows: Sequence[dict[str, Any]], header: str) -> str:
    """Mean absolute error and NLL of both models by curve fraction and early-rank reliability."""

    def by_rho(cols: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        m, rho = cols["m"], cols["rho"]
        enough = m >= MIN_RANK_CURVES
        out = [("m < 3", ~enough)]
        out += [
            (f"{max(lo, -1.0):g} to {min(hi, 1.0):g}", enough & (rho >= lo) & (rho < hi))
            for lo, hi in RHO_BINS
        ]
        return [*out, ("all", np.ones(len(m), dtype=bool))]

    return error_table(rows, header, "rank", "context rank correlation", by_rho)


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=2000, help="emulated studies per fold")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "rank_context_lcbench.md")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1; got {args.episodes}")
    rows = prediction_errors(args.episodes, args.seed)
    header = (
        "# Curve model with the study's early-rank reliability as inputs vs the default "
        "(session 26)\n\n"
        "Each fold's models (trained without the fold's tasks) on emulated prune checks of the "
        f"fold's held-out tasks ({args.episodes} emulated studies per fold, 16 queries each, "
        f"seed {args.seed}; the training's episode generator). Errors of the final value in "
        "the features' `a` units; NLL of the network's Gaussian in the same units (lower is "
        "better). Rows by the fraction of the curve seen and by the rank correlation of the "
        "context's values at that fraction with their finals.\n\n"
        f"Command: `python -m benchmarks.rank_context --episodes {args.episodes} "
        f"--seed {args.seed}`"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(rows, header))
    print(args.out.read_text())
    return args.out


if __name__ == "__main__":
    main()
