"""Tail calibration of the curve model: its errors on unseen tasks, by how much curve it saw.

Why: :class:`~optuna_meta.MetaPruner` stops a trial when ``P(final beats the target)`` falls
below a small threshold (0.02), so its decisions rest on the *upper tail* of the predictive
distribution. The network's Gaussian is fitted by likelihood on its training tasks; on tasks it
never saw, the standardised error ``z = (final - mean) / sd`` is heavier-tailed early in the
curve and lighter-tailed late (``benchmarks/curve_tails.py``: 4.0 % of finals above
``mean + 2.054 sd`` after 3-8 of 52 epochs, where the Gaussian says 2 %; 0.8 % after 27-51).
A slow starter that would have won is then stopped on a probability that is too small.

Meta-training therefore holds tasks out (inner task folds, :func:`~optuna_meta.curve._train.
build_curve_model`), measures ``z`` of the held-out tasks' emulated prune checks, and stores its
quantiles for a few ranges of the curve fraction ``f`` seen (step / final step). The pruner
reads ``P(z > z_target)`` from this table, interpolated between the ranges' centres, instead of
from the Gaussian. Beyond the table's outermost quantile the Gaussian tail takes over, scaled to
join it continuously.

Example:
    .. code-block:: python

        cal = TailCalibration.fit(z, f)  # standardised errors on held-out tasks, fractions
        p = cal.survival(2.3, 0.1)  # P(z > 2.3) after 10 % of the curve
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

TAIL_LEVELS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5,
    0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999,
)  # fmt: skip
"""Cumulative levels at which the quantiles of ``z`` are stored."""

TAIL_F_EDGES: tuple[float, ...] = (0.0, 0.04, 0.08, 0.15, 0.25, 0.4, 0.6, 0.8, 1.0)
"""Ranges of the curve fraction seen; one row of quantiles per range with enough errors."""

MIN_ERRORS_PER_RANGE = 500
"""A range with fewer measured errors is left out (its neighbours' rows are interpolated);
with fewer in every range, one row is fitted to all errors (none below this many in all)."""

CALIBRATION_NAMES: tuple[str, ...] = ("tail_f", "tail_levels", "tail_z")
"""Arrays of a calibrated curve model file: range centres, levels, quantiles (ranges x levels)."""

_Z_SPACING = 1e-4
"""Smallest step between stored quantiles: ``np.interp`` needs increasing knots, and model
files store float32 (a smaller step could vanish in the file)."""


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _increasing_quantiles(z: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of ``z`` at ``levels``, spread to rise by at least :data:`_Z_SPACING`."""
    ramp = _Z_SPACING * np.arange(len(levels))
    return np.maximum.accumulate(np.quantile(z, levels) - ramp) + ramp


class TailCalibration:
    """Quantiles of the standardised error ``z`` by curve fraction; see the module doc.

    Args:
        f: Centres of the curve-fraction ranges, increasing, shape ``(r,)``.
        levels: Cumulative levels in (0, 1), increasing, shape ``(L,)``.
        z: Quantiles of ``z`` at ``levels`` for each range, shape ``(r, L)``, increasing in
            each row.
    """

    def __init__(self, f: np.ndarray, levels: np.ndarray, z: np.ndarray) -> None:
        f = np.asarray(f, dtype=np.float64)
        levels = np.asarray(levels, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        if f.ndim != 1 or levels.ndim != 1 or z.shape != (len(f), len(levels)) or len(f) < 1:
            raise ValueError("Tail calibration arrays have inconsistent shapes.")
        if len(levels) < 2 or not (np.all(levels > 0) and np.all(levels < 1)):
            raise ValueError("Tail calibration levels must lie in (0, 1).")
        if not (np.all(np.diff(f) > 0) and np.all(np.diff(levels) > 0)):
            raise ValueError("Tail calibration fractions and levels must increase.")
        if not np.all(np.isfinite(z)) or not np.all(np.diff(z, axis=1) > 0):
            raise ValueError("Tail calibration quantiles must be finite and increasing.")
        self.f, self.levels, self.z = f, levels, z

    @classmethod
    def fit(
        cls,
        z: np.ndarray,
        f: np.ndarray,
        edges: Sequence[float] = TAIL_F_EDGES,
        levels: Sequence[float] = TAIL_LEVELS,
        min_errors: int = MIN_ERRORS_PER_RANGE,
    ) -> TailCalibration | None:
        """Quantiles of errors ``z`` measured at curve fractions ``f``; ``None`` if too few."""
        z = np.asarray(z, dtype=np.float64)
        f = np.clip(np.asarray(f, dtype=np.float64), 0.0, 1.0)
        ok = np.isfinite(z) & np.isfinite(f)
        z, f = z[ok], f[ok]
        lv = np.asarray(levels, dtype=np.float64)
        centres, rows = [], []
        for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
            last = i == len(edges) - 2
            sel = (f >= lo) & ((f <= hi) if last else (f < hi))
            if sel.sum() < min_errors:
                continue
            centres.append(float(np.median(f[sel])))
            rows.append(_increasing_quantiles(z[sel], lv))
        if not rows and len(z) >= min_errors:  # too few per range: one row for all fractions
            centres.append(float(np.median(f)))
            rows.append(_increasing_quantiles(z, lv))
        if not rows:
            return None
        order = np.argsort(centres)
        c = np.asarray(centres)[order]
        keep = np.concatenate([[True], np.diff(c) > 0])
        return cls(c[keep], lv, np.asarray(rows)[order][keep])

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> TailCalibration | None:
        """The calibration stored in a model's arrays, or ``None`` when it has none."""
        if not all(k in arrays for k in CALIBRATION_NAMES):
            return None
        return cls(arrays["tail_f"], arrays["tail_levels"], arrays["tail_z"])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store in a model file (:data:`CALIBRATION_NAMES`)."""
        return {"tail_f": self.f, "tail_levels": self.levels, "tail_z": self.z}

    def quantiles(self, f: float) -> np.ndarray:
        """The quantiles of ``z`` at curve fraction ``f`` (interpolated between ranges)."""
        if len(self.f) == 1:
            return self.z[0]
        f = min(max(float(f), float(self.f[0])), float(self.f[-1]))
        j = int(np.clip(np.searchsorted(self.f, f) - 1, 0, len(self.f) - 2))
        w = (f - self.f[j]) / (self.f[j + 1] - self.f[j])
        return (1.0 - w) * self.z[j] + w * self.z[j + 1]

    def survival(self, z: float, f: float) -> float:
        """``P(Z > z)`` for the standardised error after a curve fraction ``f``."""
        if math.isnan(z):
            return math.nan
        q = self.quantiles(f)
        if z > q[-1]:
            top = _normal_sf(float(q[-1]))
            tail = _normal_sf(z) / top if top > 0 else 0.0
            return float((1.0 - self.levels[-1]) * tail)
        return float(1.0 - np.interp(z, q, self.levels))
