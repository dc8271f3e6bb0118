"""A curve model meta-trained with unstable, spiky curves as well as LCBench's smooth ones.

Why: on real PyTorch curves (``benchmarks/real_mlp_pruning.py``) the shipped curve model is
over-confident after a few epochs. In TPE runs without pruning on the three real datasets
(seeds 0-4, every report scored), checks it gave a probability of improvement below 1 % after
2-7 of 20 epochs ended above their target 5-10 % of the time. The trials behind those
misses have unstable curves (a high learning rate: 69.1, 69.7, 50.3, 68.3, 60.2 ... ending at
77.6) whose last report dips far below their trend, and the network's mean is anchored on the
last report. LCBench's surrogate curves, the training data, are smooth (median second
difference 0.005 accuracy points, against 0.1-0.8 and tails of 10-20 points on the real
curves), and the training's own noise (:mod:`optuna_meta.curve._train`, step 2) is Gaussian,
the same for every trial and at most 0.2 of the finals' spread.

The variant adds one step to the emulated studies (:func:`spikes`, through
``_task_examples(augment=...)``, which leaves the episodes' own random stream untouched): in
half of the episodes a share of the trials is unstable, with downward dips whose size follows
a heavy-tailed amplitude per trial and an envelope in time that decays to zero at the final
step (learning-rate annealing: a trial that dips early may still end well) or, in 30 % of
those episodes, stays constant (the final value is noisy too). Everything else is the
default's: features, network, training settings and tail calibration; fold models for the
LCBench CV protocol and one model on every LCBench task but YAHPO's test instances for the
real curves, cached in ``benchmarks/results/cache/``.

Run::

    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.noisy_curves:TPE_NOISY
    python -m benchmarks.real_mlp_pruning --seeds 0-9 --pruners meta_noisy \\
        --out benchmarks/results/seeds0-9

The results and the decision are in ``benchmarks/README.md``, "Unstable curves in training".
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.config_curve import train_variant
from benchmarks.meta_methods import N_CONFIGS, disk_cached, fold_training_tasks
from benchmarks.meta_pruner_methods import (
    TRAINING_VERSION,
    _sampler,
    _version,
)
from benchmarks.objectives import all_tasks
from benchmarks.protocol import BenchContext
from benchmarks.pruning import PrunerMethod
from optuna_meta import MetaPruner
from optuna_meta.curve import FEATURE_NAMES, CurveModel
from optuna_meta.curve._train import (
    CurveTrainConfig,
)

SPIKE_EPISODES = 0.5
"""Share of the emulated studies with unstable trials."""
UNSTABLE_SHARE = (0.1, 0.6)
"""Range of the share of an episode's trials that are unstable."""
AMPLITUDE = (0.05, 1.5)
"""Log-uniform range of an unstable trial's dip size, in the episode's finals' spreads."""
CONSTANT_ENVELOPE = 0.3
"""Share of the spiky episodes whose noise does not decay (their final value is noisy too)."""
SYMMETRIC = 0.3
"""Size of the two-sided part of the noise relative to the dips."""
SPIKE_SEED = 7919
"""Offset of the augmentation's random stream from the training seed."""
VARIANT_VERSION = 1
"""Bumped whenever the variant's training changes (invalidates its cached models)."""


def spikes(rng: np.random.Generator, V: np.ndarray) -> np.ndarray:
    """``V`` (trials x steps 1..T) with unstable trials in :data:`SPIKE_EPISODES` of the calls."""
    if rng.random() >= SPIKE_EPISODES:
        return V
    n, T = V.shape
    fin = V[:, -1]
    q75, q25 = np.percentile(fin, [75, 25])
    spread = max(float(fin.std()), float(q75 - q25) / 1.349)
    if not spread > 0:
        return V
    unstable = rng.random(n) < rng.uniform(*UNSTABLE_SHARE)
    amp = spread * np.exp(rng.uniform(math.log(AMPLITUDE[0]), math.log(AMPLITUDE[1]), n))
    amp = np.where(unstable, amp, 0.0)
    frac = np.arange(1, T + 1) / T
    if rng.random() < CONSTANT_ENVELOPE:
        env = np.ones(T)
    else:
        env = (0.5 * (1.0 + np.cos(np.pi * frac))) ** rng.uniform(0.5, 2.0)
    dip_rate = rng.uniform(0.2, 1.0)
    dips = -np.abs(rng.normal(size=(n, T))) * (rng.random((n, T)) < dip_rate)
    noise = dips + SYMMETRIC * rng.normal(size=(n, T))
    return V + amp[:, None] * env[None, :] * noise


def _augmenter(seed: int):
    rng = np.random.default_rng(seed + SPIKE_SEED)
    return lambda V, lo, hi: spikes(rng, V)


def _build(tasks: list[str], digest: str) -> CurveModel:
    weights = train_variant(tasks, augment=_augmenter(CurveTrainConfig().seed))
    return CurveModel(
        weights=weights,
        manifest={
            "name": f"lcbench-curve-noisy-{digest}",
            "kind": "curve-mlp",
            "training_tasks": tasks,
            "variant": "benchmarks.noisy_curves",
        },
    )


def noisy_model(train_tasks: tuple[str, ...]) -> CurveModel:
    """The variant trained on ``train_tasks`` minus YAHPO's test instances (cached)."""
    tasks = fold_training_tasks("lcbench", train_tasks)
    key = [
        tasks,
        N_CONFIGS,
        vars(CurveTrainConfig()),
        list(FEATURE_NAMES),
        TRAINING_VERSION,
        VARIANT_VERSION,
    ]
    return disk_cached(
        "curve_noisy_lcbench", key, CurveModel.load, lambda digest: _build(tasks, digest)
    )


def shipped_like_model() -> CurveModel:
    """The variant trained as the shipped model is: every LCBench task but the test instances."""
    return noisy_model(tuple(all_tasks("lcbench")))


def _tpe_noisy_factory(ctx: BenchContext):
    key = ("noisy-curve-model", ctx.train_tasks)
    if key not in ctx.cache:
        ctx.cache[key] = noisy_model(ctx.train_tasks)
    return _sampler("tpe", ctx), MetaPruner(ctx.cache[key])


TPE_NOISY = PrunerMethod(
    "tpe_meta_noisy",
    _tpe_noisy_factory,
    label="TPE + MetaPruner() [curve model trained with unstable, spiky curves too; "
    "session 26 variant; 5-fold task CV]",
    baseline="tpe_nop",
    version=f"{_version('tpe')}+noisy{VARIANT_VERSION}",
)


def real_curve_pruner() -> MetaPruner:
    """The variant for ``real_mlp_pruning`` (the model trained as the shipped one is)."""
    return MetaPruner(shipped_like_model())
