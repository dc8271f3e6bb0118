"""A Domhan-style parametric learning-curve extrapolation baseline (scipy).

Domhan, Springenberg & Hutter (IJCAI 2015) extrapolate a partial learning curve with a weighted
ensemble of parametric saturating curves fitted by MCMC. This baseline keeps the idea but not the
MCMC: five of their families are each fitted by least squares
(``scipy.optimize.curve_fit``) to the observed points ``(step, value)``, evaluated at the final
step ``T``, and averaged with equal weights over the fits that converged. (Domhan weights
members by their posterior. Measured on 50 curves of LCBench task 167168 cut at epoch 5 of 52,
the mean absolute error was 4.5 with equal weights, 5.3 with weights proportional to the
inverse mean squared residual, 6.4 keeping only fits within 4x the best residual: with few
points the most flexible member fits best and extrapolates worst.) It is used by
``benchmarks/curve_quality.py`` as the reference the meta-learned model must beat; it is not on
the pruning path.

Families (``x`` = step, larger values are better):

* ``pow3``: ``c - a x^(-alpha)``
* ``exp3``: ``c - a exp(-b x)``
* ``ilog2``: ``c - a / log(x + 1)``
* ``log_power``: ``a / (1 + (x / exp(b))^(-c))``
* ``janoschek``: ``alpha - (alpha - beta) exp(-k x^delta)``

Each member's prediction is clipped to ``[min(observed), max(observed) + span * T / x_last]``
(span: the observed range), a loose version of Domhan's prior that curves saturate; the standard
deviation combines the spread of the members' predictions and their mean residual variance.
With fewer than 3 observed points the prediction is the last value with the observed spread.

Example:
    .. code-block:: python

        from benchmarks.curve_baseline import extrapolate

        mean, std = extrapolate(steps[:5], curve[:5], final_step=52)
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def _pow3(x, c, a, la):
    return c - a * x ** (-np.exp(la))


def _exp3(x, c, a, lb):
    return c - a * np.exp(-np.exp(lb) * x)


def _ilog2(x, c, a):
    return c - a / np.log(x + 1.0)


def _log_power(x, a, b, lc):
    return a / (1.0 + (x / np.exp(b)) ** (-np.exp(lc)))


def _janoschek(x, alpha, beta, lk, ldelta):
    return alpha - (alpha - beta) * np.exp(-np.exp(lk) * x ** np.exp(ldelta))


def _families(y: np.ndarray, x: np.ndarray):
    """(function, initial guess) per family, from the observed scale.

    Positive parameters are fitted through their logarithm, so the fits are unconstrained
    (Levenberg-Marquardt, much faster than bounded least squares).
    """
    top = float(y.max())
    span = float(y.max() - y.min()) or max(abs(top), 1.0) * 1e-3
    return [
        (_pow3, [top + span, span, math.log(0.5)]),
        (_exp3, [top + span, 2 * span, -math.log(x[-1])]),
        (_ilog2, [top + span, span]),
        (_log_power, [top + span, 0.0, 0.0]),
        (_janoschek, [top + span, float(y[0]), math.log(0.5), 0.0]),
    ]


def extrapolate(
    steps: np.ndarray, values: np.ndarray, final_step: float, *, maxfev: int = 1000
) -> tuple[float, float]:
    """Mean and std of the value at ``final_step`` from the partial curve (larger = better)."""
    from scipy.optimize import curve_fit

    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[ok], y[ok]
    if len(y) == 0:
        return math.nan, math.nan
    span = float(y.max() - y.min())
    if len(y) < 3:
        return float(y[-1]), max(span, 1e-9 * max(1.0, abs(float(y[-1]))))
    preds, resid = [], []
    for fn, p0 in _families(y, x):
        n_par = len(p0)
        if len(y) < n_par:
            continue
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                popt, _ = curve_fit(fn, x, y, p0=p0, maxfev=maxfev)
                fit = fn(x, *popt)
                pred = float(fn(np.float64(final_step), *popt))
        except (RuntimeError, ValueError, FloatingPointError, OverflowError):
            continue
        if not (math.isfinite(pred) and np.all(np.isfinite(fit))):
            continue
        preds.append(pred)
        resid.append(float(np.mean((fit - y) ** 2)))
    if not preds:
        return float(y[-1]), max(span, 1e-9 * max(1.0, abs(float(y[-1]))))
    lo = float(y.min())
    hi = float(y.max()) + span * final_step / float(x[-1])
    p = np.clip(np.asarray(preds), lo, hi)
    floor = 1e-3 * span if span > 0 else 1e-9 * max(1.0, abs(float(y[-1])))
    r = np.asarray(resid)
    mean = float(p.mean())
    var = float(p.var()) + float(r.mean())
    return mean, max(math.sqrt(var), floor)
