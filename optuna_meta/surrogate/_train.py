"""Meta-training of the deep-kernel GP surrogate with torch.

Training imitates how the sampler uses the model. Each *episode* picks a task, draws a context
of ``n`` observed configurations the way a Bayesian-optimisation run would (biased towards good
configurations, ``n`` from 1 to :data:`MAX_CONTEXT`), standardises the context values by their
own mean and standard deviation exactly as the sampler does, and scores the GP's predictive
log-likelihood of held-out query configurations of the same task. An auxiliary regression of
the meta-mean ``m(x)`` on every task's z-scored values teaches the zero-shot guess used when
nothing is observed yet.

Only this module imports torch; the learned weights are exported as numpy arrays.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from optuna_meta.surrogate._network import WEIGHT_NAMES, init_weights

MAX_CONTEXT = 48
"""Largest context an episode uses (the sampler conditions on at most a few hundred trials)."""

N_QUERY = 48
MEAN_LOSS_WEIGHT = 1.0
MIN_CONTEXT_STD = 0.05
"""Floor of a context's std in task z-units: near-identical contexts would blow up targets."""
MAX_ABS_TARGET = 10.0
"""Standardised query targets are clipped to this: a robust loss for far-off queries."""


@dataclass
class TrainConfig:
    """Hyperparameters of meta-training (defaults chosen on LCBench task-CV)."""

    hidden: int = 64
    n_features: int = 16
    steps: int = 3000
    episodes_per_step: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-5
    max_context: int = MAX_CONTEXT
    mean_target: str = "zscore"
    """What the meta-mean regresses: per-task z-scores, or min-max scaled values ("minmax")."""
    seed: int = 0


def _require_torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("Meta-training needs torch: pip install 'optuna-meta[train]'.") from e
    return torch


def _same_size(data: list) -> bool:
    return len({len(d[1]) for d in data}) == 1


def train_surrogate(
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
    config: TrainConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Meta-train the surrogate on ``tasks``, a list of ``(X, y)`` pairs.

    ``X`` holds unit-encoded configurations (n, d) (NaN is not allowed: encode inactive
    parameters first), ``y`` their objective values oriented so that larger is better.
    Returns the numpy weights and a small dict of training statistics.
    """
    torch = _require_torch()
    cfg = config or TrainConfig()
    if not tasks:
        raise ValueError("Meta-training needs at least one task.")
    d = tasks[0][0].shape[1]
    if cfg.mean_target not in ("zscore", "minmax"):
        raise ValueError(f"mean_target must be 'zscore' or 'minmax', not {cfg.mean_target!r}.")
    data = []
    mean_targets: list = []
    for X, y in tasks:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != d or len(X) != len(y):
            raise ValueError("Every task needs X of shape (n, d) and y of shape (n,).")
        ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
        X, y = X[ok], y[ok]
        if len(y) < 8:
            continue
        sd = y.std()
        z = (y - y.mean()) / (sd if sd > 0 else 1.0)
        order = np.argsort(-z)
        data.append((torch.tensor(X), torch.tensor(z), order))
        span = y.max() - y.min()
        if cfg.mean_target == "minmax":  # 1 - normalised regret: the portfolio's criterion
            mean_targets.append(torch.tensor((y - y.min()) / (span if span > 0 else 1.0)))
        else:
            mean_targets.append(torch.tensor(z))
    if not data:
        raise ValueError("No task has at least 8 finite observations.")

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)  # small matrices: threads cost more than they give
    rng = np.random.default_rng(cfg.seed)
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for k, v in init_weights(d, cfg.hidden, cfg.n_features, cfg.seed).items()
    }
    opt = torch.optim.Adam(params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)

    def embed(X):
        h = torch.nn.functional.silu(X @ params["W1"] + params["b1"])
        h = torch.nn.functional.silu(h @ params["W2"] + params["b2"])
        return h @ params["Wf"] + params["bf"], h @ params["wm"] + params["bm"]

    def kernel(pa, pb, ma, mb):
        amp2 = torch.exp(2 * params["log_amp"])
        sq = (
            (pa * pa).sum(-1)[..., :, None]
            + (pb * pb).sum(-1)[..., None, :]
            - 2 * pa @ pb.transpose(-1, -2)
        ).clamp_min(0.0)
        return (
            amp2 * torch.exp(-0.5 * sq)
            + torch.exp(2 * params["log_sa"])
            + torch.exp(2 * params["log_sb"]) * ma[..., :, None] * mb[..., None, :]
        )

    Xs = torch.stack([X for X, _, _ in data]) if _same_size(data) else None
    # Contexts are drawn without replacement, so the smallest task bounds their size.
    max_context = max(1, min(cfg.max_context, min(len(z) for _, z, _ in data) - 1))
    start = time.perf_counter()
    history: list[float] = []
    B, Q = cfg.episodes_per_step, N_QUERY
    for step in range(cfg.steps):
        opt.zero_grad()
        # One context size per step, so the B episodes batch into one Cholesky.
        n = math.floor(math.exp(rng.uniform(0.0, math.log(max_context + 1))))
        n = max(1, min(n, max_context))
        task_idx = rng.integers(len(data), size=B)
        ctx_rows, qry_rows = [], []
        for i in task_idx:
            _, z, order = data[i]
            z_np = z.numpy()
            logits = rng.uniform(0.0, 3.0) * z_np
            p = np.exp(logits - logits.max())
            ctx_rows.append(rng.choice(len(z_np), size=n, replace=False, p=p / p.sum()))
            top = order[: max(len(z_np) // 10, Q)]
            qry_rows.append(
                np.concatenate([rng.choice(len(z_np), Q // 2), rng.choice(top, Q - Q // 2)])
            )
        if Xs is not None:
            ti = torch.as_tensor(task_idx)
            Xc = Xs[ti[:, None], torch.as_tensor(np.stack(ctx_rows))]
            Xq = Xs[ti[:, None], torch.as_tensor(np.stack(qry_rows))]
        else:
            Xc = torch.stack([data[i][0][r] for i, r in zip(task_idx, ctx_rows, strict=True)])
            Xq = torch.stack([data[i][0][r] for i, r in zip(task_idx, qry_rows, strict=True)])
        zc = torch.stack([data[i][1][r] for i, r in zip(task_idx, ctx_rows, strict=True)])
        zq = torch.stack([data[i][1][r] for i, r in zip(task_idx, qry_rows, strict=True)])
        mu = zc.mean(1, keepdim=True)
        if n >= 2:
            sd = zc.std(1, unbiased=False, keepdim=True).clamp_min(MIN_CONTEXT_STD)
        else:
            sd = torch.ones_like(mu)
        yc = (zc - mu) / sd
        yq = ((zq - mu) / sd).clamp(-MAX_ABS_TARGET, MAX_ABS_TARGET)
        pc, mc = embed(Xc)
        pq, mq = embed(Xq)
        noise = torch.exp(2 * params["log_noise"])
        eye = torch.eye(n, dtype=torch.float64)
        K = kernel(pc, pc, mc, mc) + (noise + 1e-6) * eye
        L = torch.linalg.cholesky(K)
        resid = (yc - params["b0"] * mc)[..., None]
        alpha = torch.cholesky_solve(resid, L)[..., 0]
        Kq = kernel(pq, pc, mq, mc)
        mean = params["b0"] * mq + (Kq @ alpha[..., None])[..., 0]
        v = torch.linalg.solve_triangular(L, Kq.transpose(1, 2), upper=False)
        prior = (
            torch.exp(2 * params["log_amp"])
            + torch.exp(2 * params["log_sa"])
            + torch.exp(2 * params["log_sb"]) * mq**2
        )
        var = torch.clamp(prior - (v * v).sum(1), min=1e-9) + noise
        nll = 0.5 * (torch.log(2 * math.pi * var) + (yq - mean) ** 2 / var)
        loss = nll.mean()
        # Zero-shot head: the meta-mean regresses every task's z-scores.
        picks = rng.integers(len(data), size=8)
        rows = [(i, rng.integers(len(data[i][1]), size=64)) for i in picks]
        m_pred = embed(torch.stack([data[i][0][r] for i, r in rows]))[1]
        m_true = torch.stack([mean_targets[i][r] for i, r in rows])
        loss = loss + MEAN_LOSS_WEIGHT * ((m_pred - m_true) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if log is not None and (step + 1) % max(cfg.steps // 10, 1) == 0:
            log(f"step {step + 1}/{cfg.steps} loss {np.mean(history[-100:]):.4f}")
    weights = {k: params[k].detach().numpy().astype(np.float64) for k in WEIGHT_NAMES}
    stats = {
        "final_loss": float(np.mean(history[-100:])),
        "train_seconds": time.perf_counter() - start,
        "n_tasks": float(len(data)),
    }
    return weights, stats
