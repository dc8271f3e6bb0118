"""Choose the next configuration: maximise an acquisition over the model's unit cube.

The surrogate works on unit-encoded features. A study may tune only some of the model's
parameters, over narrower or wider ranges, so the search box is built per study: a tuned
numerical parameter spans the user's range mapped into the model's unit interval, an untuned one
is pinned to the model's default. Candidates are random points of that box plus perturbations of
the best observations; the best few are then refined locally with shrinking steps, so the
proposal is not capped by the density of a fixed random pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optuna_meta.space import Box
from optuna_meta.surrogate import DeepKernelGP

__all__ = ["Box", "Proposal", "expected_improvement", "norm_cdf", "propose"]

N_RANDOM_CANDIDATES = 512
N_LOCAL_STARTS = 4
LOCAL_RADII = (0.05, 0.015, 0.004)
N_PER_LOCAL_STEP = 48
N_AROUND_BEST = 16
"""Candidates drawn around each of the best observations (local exploitation)."""
MAX_DEDUP_TRIES = 64
"""Ranked candidates examined for one that is not a duplicate of an existing trial."""
PENDING_NOISE = 1e-4
"""Variance added to fantasised (pending) observations: kriging-believer style."""


@dataclass(frozen=True)
class Proposal:
    x: np.ndarray
    mean: float  # standardised, maximised
    std: float


def norm_cdf(u: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): avoids a scipy dependency in the core.
    z = np.abs(u) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(u) * erf)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI for maximisation; std is floored to keep it finite."""
    std = np.maximum(std, 1e-9)
    u = (mean - best) / std
    pdf = np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
    return std * (u * norm_cdf(u) + pdf)


def propose(
    gp: DeepKernelGP,
    box: Box,
    X_obs: np.ndarray,
    y_obs: np.ndarray,
    X_pending: np.ndarray,
    rng: np.random.Generator,
    *,
    n_candidates: int = N_RANDOM_CANDIDATES,
    is_duplicate: Callable[[np.ndarray], bool] | None = None,
    weight: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Proposal:
    """Maximise the acquisition over ``box``.

    ``y_obs`` is standardised and maximised. With no observation the acquisition is the
    meta-mean itself (the model's best zero-shot guess). Pending configurations (running trials
    of other workers) are added as fantasies at their predicted mean, which shrinks the
    acquisition around them so parallel workers do not propose the same point. ``is_duplicate``
    rejects a winner that would repeat an existing configuration once projected (e.g. at a
    corner of the box, where clipping maps nearby points onto one); the next best is taken.
    ``weight(X)`` multiplies the expected improvement (MetaSampler passes the probability of
    being feasible while none of a constrained study's trials is).
    """
    X_fit, y_fit = X_obs, y_obs
    extra: np.ndarray | None = None
    if len(X_pending):
        fantasy = gp.predict(X_obs, y_obs, X_pending).mean
        X_fit = np.vstack([X_obs, X_pending]) if len(X_obs) else X_pending
        y_fit = np.concatenate([y_obs, fantasy])
        extra = np.concatenate([np.zeros(len(X_obs)), np.full(len(X_pending), PENDING_NOISE)])
    best = float(np.max(y_obs)) if len(y_obs) else None

    posterior = gp.condition(X_fit, y_fit, extra_noise=extra)

    def score(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pred = posterior.predict(C)
        if weight is not None:
            ref = best if best is not None else float(np.max(y_fit))
            ei = expected_improvement(pred.mean, pred.std, ref)
            return ei * weight(C), pred.mean, pred.std
        if best is None and len(X_fit) == 0:
            return pred.mean, pred.mean, pred.std
        ref = best if best is not None else float(np.max(y_fit))
        return expected_improvement(pred.mean, pred.std, ref), pred.mean, pred.std

    C = box.sample(n_candidates, rng)
    if len(X_obs):
        top = X_obs[np.argsort(-y_obs)[:N_LOCAL_STARTS]]
        jitter = rng.normal(0.0, 0.05, (N_AROUND_BEST * len(top), C.shape[1])) * box.free
        C = np.vstack([C, box.clip(top.repeat(N_AROUND_BEST, 0) + jitter)])
    acq, _, _ = score(C)
    order = np.argsort(-acq)[:N_LOCAL_STARTS]
    starts, start_acq = C[order], acq[order]
    for radius in LOCAL_RADII:
        k = len(starts)
        noise = rng.normal(0.0, radius, (k * N_PER_LOCAL_STEP, C.shape[1])) * box.free
        local = box.clip(starts.repeat(N_PER_LOCAL_STEP, 0) + noise)
        a, _, _ = score(local)
        a = a.reshape(k, N_PER_LOCAL_STEP)
        best_idx = np.argmax(a, axis=1)
        improved = a[np.arange(k), best_idx] > start_acq
        starts = np.where(
            improved[:, None],
            local.reshape(k, N_PER_LOCAL_STEP, -1)[np.arange(k), best_idx],
            starts,
        )
        start_acq = np.where(improved, a[np.arange(k), best_idx], start_acq)
    ranked = np.vstack([starts[np.argsort(-start_acq)], C[np.argsort(-acq)[:MAX_DEDUP_TRIES]]])
    winner = ranked[:1]
    if is_duplicate is not None:
        for row in ranked:
            if not is_duplicate(row):
                winner = row[None, :]
                break
        else:  # everything near the optimum is taken: explore a fresh random point
            for row in box.sample(MAX_DEDUP_TRIES, rng):
                if not is_duplicate(row):
                    winner = row[None, :]
                    break
    _, m, s = score(winner)
    return Proposal(winner[0], float(m[0]), float(s[0]))
