"""The curve model's network, evaluated with numpy alone.

Why numpy: a pruner runs inside the user's training loop, at every reported step, often in a
process that drives a GPU with torch. Importing torch there (or touching its thread pools) would
slow the loop down, so pruning uses only numpy; torch is needed for meta-training alone
(:mod:`optuna_meta.curve._train`), which mirrors this forward pass exactly.

The network: inputs (:data:`~optuna_meta.curve._features.FEATURE_NAMES`) are standardised with
the training set's mean and std, then ``h = silu(W2 silu(W1 x + b1) + b2)`` and
``(o_mean, o_std) = h W3 + b3``. The prediction of the final value, in the features' ``a``
units, is Gaussian with mean ``a_last + o_mean`` (the network predicts the change from the last
reported value) and std ``MIN_STD + softplus(o_std)``.
"""

from __future__ import annotations

import numpy as np

WEIGHT_NAMES: tuple[str, ...] = ("x_mean", "x_std", "W1", "b1", "W2", "b2", "W3", "b3")
"""Arrays a curve model file must hold."""

MIN_STD = 0.005
"""Floor of the predicted std (``a`` units)."""

A_LAST_INDEX = 3
"""Position of ``a_last`` in the feature vector (the mean is predicted relative to it)."""


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


class CurveNetwork:
    """Numpy forward pass of the curve model.

    Args:
        weights: The arrays named in :data:`WEIGHT_NAMES`.

    Example:
        .. code-block:: python

            net = CurveNetwork(weights)
            mean_a, std_a = net.predict(features)  # features: (n, N_FEATURES)
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        missing = [k for k in WEIGHT_NAMES if k not in weights]
        if missing:
            raise ValueError(f"Curve model weights lack {missing}.")
        w = {k: np.asarray(weights[k], dtype=np.float64) for k in WEIGHT_NAMES}
        n_in = w["W1"].shape[0] if w["W1"].ndim == 2 else -1
        ok = (
            w["W1"].ndim == 2
            and w["x_mean"].shape == (n_in,)
            and w["x_std"].shape == (n_in,)
            and w["b1"].shape == (w["W1"].shape[1],)
            and w["W2"].ndim == 2
            and w["W2"].shape[0] == w["W1"].shape[1]
            and w["b2"].shape == (w["W2"].shape[1],)
            and w["W3"].shape == (w["W2"].shape[1], 2)
            and w["b3"].shape == (2,)
        )
        if not ok:
            raise ValueError("Curve model weight shapes are inconsistent.")
        if np.any(w["x_std"] <= 0):
            raise ValueError("Curve model input scales must be positive.")
        self.weights = w
        self.n_inputs = int(n_in)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (``a`` units) of the final value for feature rows ``X`` (n, d)."""
        w = self.weights
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"Expected features of shape (n, {self.n_inputs}), got {X.shape}.")
        x = (X - w["x_mean"]) / w["x_std"]
        h = _silu(x @ w["W1"] + w["b1"])
        h = _silu(h @ w["W2"] + w["b2"])
        o = h @ w["W3"] + w["b3"]
        return X[:, A_LAST_INDEX] + o[:, 0], MIN_STD + _softplus(o[:, 1])


def init_weights(
    n_inputs: int, hidden: int, seed: int, x_mean: np.ndarray, x_std: np.ndarray
) -> dict[str, np.ndarray]:
    """Random initial weights (the trainer's start; also used by tests of the numpy path)."""
    rng = np.random.default_rng(seed)

    def dense(a: int, b: int) -> np.ndarray:
        return rng.normal(0.0, 1.0 / np.sqrt(a), (a, b))

    return {
        "x_mean": np.asarray(x_mean, dtype=np.float64),
        "x_std": np.asarray(x_std, dtype=np.float64),
        "W1": dense(n_inputs, hidden),
        "b1": np.zeros(hidden),
        "W2": dense(hidden, hidden),
        "b2": np.zeros(hidden),
        "W3": dense(hidden, 2) * 0.1,
        "b3": np.array([0.0, -1.0]),
    }
