"""The meta-learned deep-kernel GP, evaluated with numpy alone.

Why numpy: the sampler runs inside the user's training process, often one that drives a GPU with
torch. Importing torch (or touching its thread pools) from the sampler would slow down or disturb
that process, so the sampling path uses only numpy; torch is needed for meta-training alone
(:mod:`optuna_meta.surrogate._train`), which mirrors the forward pass defined here exactly.

The model (one network shared by all tasks, adapted to a task by conditioning on its trials):

* a trunk ``h(x) = silu(W2 silu(W1 x + b1) + b2)`` on the unit-encoded configuration ``x``;
* a *meta-mean* head ``m(x) = h(x) . wm + bm`` -- what configurations are good across tasks;
* a *feature* head ``phi(x) = h(x) Wf + bf`` in which an RBF kernel measures similarity.

Given observations ``(X, y)`` of the current task, with ``y`` standardised by their own mean and
standard deviation (so the model never needs to know the user's units), the prediction is a GP
with prior mean ``b0 * m(x)`` and kernel::

    k(x, x') = s^2 exp(-|phi(x) - phi(x')|^2 / 2) + sa^2 + sb^2 m(x) m(x')

The last two terms integrate out a per-task intercept and slope of the meta-mean, so a task on
which the average landscape is shifted or stretched is still modelled well from few trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHT_NAMES: tuple[str, ...] = (
    "W1",
    "b1",
    "W2",
    "b2",
    "Wf",
    "bf",
    "wm",
    "bm",
    "log_amp",
    "log_noise",
    "log_sa",
    "b0",
    "log_sb",
)
"""Arrays a surrogate file must hold, in the order of :func:`init_weights`."""

_JITTER = 1e-6


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Prediction:
    """Predictive mean and standard deviation of the (standardised) objective, maximised."""

    mean: np.ndarray
    std: np.ndarray


class DeepKernelGP:
    """Numpy forward pass and GP posterior of the meta-learned surrogate.

    Args:
        weights: The arrays named in :data:`WEIGHT_NAMES` (float64 after loading).

    Example:
        .. code-block:: python

            gp = DeepKernelGP(weights)
            pred = gp.predict(X_obs, y_std, X_candidates)  # y_std: standardised, maximised
            best = X_candidates[np.argmax(pred.mean)]
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        missing = [k for k in WEIGHT_NAMES if k not in weights]
        if missing:
            raise ValueError(f"Surrogate weights lack {missing}.")
        self.weights = {k: np.asarray(weights[k], dtype=np.float64) for k in WEIGHT_NAMES}
        w = self.weights
        self.n_inputs = int(w["W1"].shape[0])
        if w["W2"].shape[0] != w["W1"].shape[1] or w["Wf"].shape[0] != w["W2"].shape[1]:
            raise ValueError("Surrogate weight shapes are inconsistent.")

    # -- network ------------------------------------------------------------------------------
    def embed(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(phi(X), m(X))`` for unit-encoded configurations ``X`` of shape (n, d)."""
        w = self.weights
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"Expected X of shape (n, {self.n_inputs}), got {X.shape}.")
        h = _silu(X @ w["W1"] + w["b1"])
        h = _silu(h @ w["W2"] + w["b2"])
        return h @ w["Wf"] + w["bf"], h @ w["wm"] + w["bm"]

    def meta_mean(self, X: np.ndarray) -> np.ndarray:
        """The task-independent prior mean ``m(x)``: higher is better on an average task."""
        return self.embed(X)[1]

    # -- GP -----------------------------------------------------------------------------------
    def _hyper(self) -> tuple[float, float, float, float, float]:
        w = self.weights
        amp2 = float(np.exp(2 * w["log_amp"]))
        noise = float(np.exp(2 * w["log_noise"]))
        sa2 = float(np.exp(2 * w["log_sa"]))
        sb2 = float(np.exp(2 * w["log_sb"]))
        return amp2, noise, sa2, float(w["b0"]), sb2

    def condition(
        self,
        X_obs: np.ndarray,
        y_obs: np.ndarray,
        *,
        extra_noise: np.ndarray | None = None,
        meta_mean: bool = True,
    ) -> Posterior:
        """Condition on observations once; the returned posterior predicts many queries.

        ``y_obs`` must already be standardised (mean 0, std 1 over the observations, or centred
        when there is a single one) and oriented so that larger is better. ``extra_noise`` adds
        per-observation variance (used for "fantasised" pending trials). ``meta_mean=False``
        drops the prior mean ``b0 * m(x)``, for a quantity other than the objective (a
        constraint) that only borrows the learned similarity; the kernel's ``m(x) m(x')``
        term still lets such a quantity follow the meta-mean up or down.
        """
        amp2, noise, sa2, b0, sb2 = self._hyper()
        if not meta_mean:
            b0 = 0.0
        if len(X_obs) == 0:
            return Posterior(self, None, None, None, None, None, b0)
        phi_o, m_o = self.embed(X_obs)
        K = _kernel(phi_o, phi_o, m_o, m_o, amp2, sa2, sb2)
        K[np.diag_indices_from(K)] += noise + _JITTER
        if extra_noise is not None:
            K[np.diag_indices_from(K)] += extra_noise
        L = np.linalg.cholesky(K)
        resid = np.asarray(y_obs, dtype=np.float64) - b0 * m_o
        alpha = _cho_solve(L, resid)
        return Posterior(self, phi_o, m_o, L, alpha, np.linalg.inv(L), b0)

    def predict(
        self,
        X_obs: np.ndarray,
        y_obs: np.ndarray,
        X_query: np.ndarray,
        *,
        extra_noise: np.ndarray | None = None,
    ) -> Prediction:
        """Posterior of the standardised objective at ``X_query`` (see :meth:`condition`)."""
        return self.condition(X_obs, y_obs, extra_noise=extra_noise).predict(X_query)

    @property
    def noise_std(self) -> float:
        return float(np.exp(self.weights["log_noise"]))


class Posterior:
    """The GP conditioned on a task's observations (Cholesky factor cached)."""

    def __init__(
        self,
        gp: DeepKernelGP,
        phi_o: np.ndarray | None,
        m_o: np.ndarray | None,
        L: np.ndarray | None,
        alpha: np.ndarray | None,
        L_inv: np.ndarray | None,
        b0: float,
    ) -> None:
        self.gp = gp
        self._phi_o, self._m_o, self._L, self._alpha, self._L_inv = phi_o, m_o, L, alpha, L_inv
        self._b0 = b0

    def predict(self, X_query: np.ndarray) -> Prediction:
        amp2, _, sa2, _, sb2 = self.gp._hyper()
        b0 = self._b0
        phi_q, m_q = self.gp.embed(X_query)
        prior_var = amp2 + sa2 + sb2 * m_q**2
        if self._phi_o is None:
            return Prediction(b0 * m_q, np.sqrt(prior_var))
        assert self._m_o is not None and self._alpha is not None and self._L_inv is not None
        Kq = _kernel(phi_q, self._phi_o, m_q, self._m_o, amp2, sa2, sb2)
        mean = b0 * m_q + Kq @ self._alpha
        v = self._L_inv @ Kq.T
        var = np.maximum(prior_var - np.sum(v * v, axis=0), 1e-12)
        return Prediction(mean, np.sqrt(var))


def _kernel(
    phi_a: np.ndarray,
    phi_b: np.ndarray,
    m_a: np.ndarray,
    m_b: np.ndarray,
    amp2: float,
    sa2: float,
    sb2: float,
) -> np.ndarray:
    sq = (
        np.sum(phi_a**2, axis=1)[:, None]
        + np.sum(phi_b**2, axis=1)[None, :]
        - 2.0 * phi_a @ phi_b.T
    )
    return amp2 * np.exp(-0.5 * np.maximum(sq, 0.0)) + sa2 + sb2 * np.outer(m_a, m_b)


def _cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.solve(L.T, np.linalg.solve(L, b))


def init_weights(n_inputs: int, hidden: int, n_features: int, seed: int) -> dict[str, np.ndarray]:
    """Random initial weights (used by the trainer and by tests of the numpy path)."""
    rng = np.random.default_rng(seed)

    def dense(a: int, b: int) -> np.ndarray:
        return rng.normal(0.0, 1.0 / np.sqrt(a), (a, b))

    return {
        "W1": dense(n_inputs, hidden),
        "b1": np.zeros(hidden),
        "W2": dense(hidden, hidden),
        "b2": np.zeros(hidden),
        "Wf": dense(hidden, n_features),
        "bf": np.zeros(n_features),
        "wm": dense(hidden, 1)[:, 0],
        "bm": np.zeros(()),
        "log_amp": np.zeros(()),
        "log_noise": np.asarray(np.log(0.1)),
        "log_sa": np.asarray(np.log(0.5)),
        "b0": np.asarray(1.0),
        "log_sb": np.asarray(np.log(0.5)),
    }
