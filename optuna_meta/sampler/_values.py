"""A study's objective values as the surrogate sees them: oriented, finite, standardised.

Why a module of its own: every robustness rule about values (infinite and NaN values, a
diverged run's huge loss, objectives in tiny or huge units, pruned trials counted by their
predicted final) lives in one place, and each is a pure function of an array that a test can
call directly.

Example:
    >>> import numpy as np
    >>> z, mu, sd = _standardise(np.array([1.0, 2.0, 3.0]))
    >>> [round(float(v), 3) for v in z], mu
    ([-1.225, 0.0, 1.225], 2.0)
"""

from __future__ import annotations

import math

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from optuna_meta._attrs import ATTR_PREDICTED_FINAL

FLOAT_RESOLUTION = 8 * float(np.finfo(np.float64).eps)
"""A spread below this fraction of the values' magnitude is rounding noise: the values count
as equal (relative, so that an objective's units never change a proposal)."""


MAD_TO_SD = 1.4826
"""The median absolute deviation times this estimates a normal distribution's sd."""


MAX_OBSERVATIONS = 256
"""Cap on the trials the GP conditions on (the best half and the most recent half are kept)."""


OUTLIER_MADS = 20.0
"""How many (normal-consistent) median absolute deviations below the median an oriented value
may lie before :func:`_clip_outliers` raises it to there."""


def _finite_oriented(y: np.ndarray) -> np.ndarray | None:
    """Oriented values (larger is better) with the infinite ones made finite, or None when
    none is finite.

    An infinite value in the worse direction (a diverged loss) becomes the worst finite
    value, and one in the better direction the best: until session 33 both became the
    worst, so a minimised study's best trial (``-inf``) was learned as tied for worst, where
    TPE and GPSampler keep its order. NaN counts as the worst.
    """
    finite = np.isfinite(y)
    if not finite.any():
        return None
    best, worst = float(np.max(y[finite])), float(np.min(y[finite]))
    return np.where(finite, y, np.where(np.isposinf(y), best, worst))


def _observed_value(t: FrozenTrial) -> float | None:
    if t.state == TrialState.COMPLETE and t.values is not None and len(t.values) == 1:
        v = float(t.values[0])
        return None if math.isnan(v) else v
    if t.state == TrialState.PRUNED:
        pred = t.user_attrs.get(ATTR_PREDICTED_FINAL)
        last = t.intermediate_values.get(t.last_step) if t.last_step is not None else None
        if last is not None and not math.isfinite(last):
            return None  # it diverged after the prediction was made
        if isinstance(pred, (int, float)) and math.isfinite(pred):
            return float(pred)
    return None


def _clip_outliers(y: np.ndarray) -> np.ndarray:
    """Oriented values (larger is better) with the far worse ones raised to
    ``median - OUTLIER_MADS * MAD_TO_SD * MAD``.

    Why: the surrogate sees z-scores, and one diverged run returning a large finite loss (1e6
    among losses of 1-5) took the others' z-scores to within 1e-5 of each other: it could not
    tell them apart (a reviewer's study: 1.112 against 1.043 after 30 trials, worse in every
    seed). Only the worse tail is touched, and only far out: the better values are what the
    search is about, and a value the median absolute deviation cannot place (MAD 0) is left.
    """
    if len(y) < 3:
        return y
    med = float(np.median(y))
    mad = float(np.median(np.abs(y - med)))
    if not mad > 0:
        return y
    return np.maximum(y, med - OUTLIER_MADS * MAD_TO_SD * mad)


def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``((y - mu) / sd, mu, sd)``: per-context z-scores, the scale the surrogate trained on.

    Values near the float limit (say 1e300) overflow the squares of the standard deviation:
    they are standardised in units of their largest magnitude instead.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mu = float(np.mean(y)) if len(y) else 0.0
        sd = float(np.std(y)) if len(y) > 1 else 1.0
    if not (math.isfinite(mu) and math.isfinite(sd)):
        unit = float(np.max(np.abs(y)))
        z, mu, sd = _standardise(y / unit)
        return z, mu * unit, sd * unit
    sd = _floored_sd(sd, y)
    return (y - mu) / sd, mu, sd


def _floored_sd(sd: float, values: np.ndarray) -> float:
    """``sd``, or the values' magnitude (1 for zeros) when ``sd`` is below what floats resolve
    at that magnitude: one value, all equal, or rounding noise. Relative, so an objective's
    units never change a proposal (an absolute floor of 1e-12 made one in units of 1e-6
    propose otherwise than the same objective in units of 1)."""
    magnitude = float(np.max(np.abs(values))) if len(values) else 0.0
    if sd > FLOAT_RESOLUTION * magnitude:
        return sd
    return magnitude if magnitude > 0.0 else 1.0


def _cap(X: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(y) <= MAX_OBSERVATIONS:
        return X, y, g
    half = MAX_OBSERVATIONS // 2
    best = np.argsort(-y)[:half]
    recent = np.setdiff1d(np.arange(len(y) - MAX_OBSERVATIONS, len(y)), best)[-half:]
    keep = np.concatenate([best, recent])
    return X[keep], y[keep], g[keep]
