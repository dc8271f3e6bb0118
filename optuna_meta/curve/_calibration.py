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

The errors also depend on how many completed trials the model read as context: on the held-out
tasks of the inner folds, with 1-4 completed curves 4.8-6.4 % of the checks made in the first
8 % of the curve get a probability below 0.03 from one table for all context sizes, with 10 or
more 1.7-2.2 % (``benchmarks/context_calibration.py``). A calibration fitted with the context
sizes ``n`` (:meth:`TailCalibration.fit` with ``n=``) keeps one table per range of
:data:`TAIL_N_EDGES` and interpolates between them in ``log n``; files without it (every model
before session 29) keep their single table.

Example:
    .. code-block:: python

        cal = TailCalibration.fit(z, f)  # standardised errors on held-out tasks, fractions
        p = cal.survival(2.3, 0.1)  # P(z > 2.3) after 10 % of the curve
        by_n = TailCalibration.fit(z, f, n=n)  # n: completed trials in each error's context
        p = by_n.survival(2.3, 0.1, n=4)  # ... with 4 completed trials as context
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

TAIL_N_EDGES: tuple[float, ...] = (1, 2, 3, 5, 10, 25, math.inf)
"""Ranges ``[lo, hi)`` of the context size (completed trials) with a table of their own, when the
calibration is fitted by context size."""

CALIBRATION_NAMES: tuple[str, ...] = ("tail_f", "tail_levels", "tail_z")
"""Arrays of a calibrated curve model file: range centres, levels, quantiles (ranges x levels,
or context sizes x ranges x levels with :data:`CONTEXT_NAME`)."""

CONTEXT_NAME = "tail_n"
"""The optional array of a calibration by context size: the centres of its context-size ranges."""

_Z_SPACING = 1e-4
"""Smallest step between stored quantiles: ``np.interp`` needs increasing knots, and model
files store float32 (a smaller step could vanish in the file)."""


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _increasing_quantiles(z: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of ``z`` at ``levels``, spread to rise by at least :data:`_Z_SPACING`."""
    ramp = _Z_SPACING * np.arange(len(levels))
    return np.maximum.accumulate(np.quantile(z, levels) - ramp) + ramp


def _widened(sels: list[np.ndarray], j: int, among: np.ndarray, min_errors: int) -> np.ndarray:
    """Range ``j``'s errors ``among`` a subset, with its neighbouring ranges added in turn
    (nearest first) until there are ``min_errors`` of them or no range is left."""
    out = sels[j] & among
    for w in range(1, len(sels)):
        if out.sum() >= min_errors:
            break
        for i in (j - w, j + w):
            if 0 <= i < len(sels):
                out = out | (sels[i] & among)
    return out


class TailCalibration:
    """Quantiles of the standardised error ``z`` by curve fraction; see the module doc.

    Args:
        f: Centres of the curve-fraction ranges, increasing, shape ``(r,)``.
        levels: Cumulative levels in (0, 1), increasing, shape ``(L,)``.
        z: Quantiles of ``z`` at ``levels`` for each range, shape ``(r, L)``, increasing in
            each row; shape ``(k, r, L)`` with ``n``.
        n: Centres of the context-size ranges (completed trials), increasing and >= 1, shape
            ``(k,)``; ``None`` for one table for every context size.
    """

    def __init__(
        self, f: np.ndarray, levels: np.ndarray, z: np.ndarray, n: np.ndarray | None = None
    ) -> None:
        f = np.asarray(f, dtype=np.float64)
        levels = np.asarray(levels, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        if n is not None:
            n = np.asarray(n, dtype=np.float64)
            if n.ndim != 1 or len(n) < 1:
                raise ValueError("Tail calibration arrays have inconsistent shapes.")
            if not (np.all(np.isfinite(n)) and np.all(n >= 1) and np.all(np.diff(n) > 0)):
                raise ValueError("Tail calibration context sizes must be >= 1 and increase.")
        table = (len(f), len(levels))
        expected = table if n is None else (len(n), *table)
        if f.ndim != 1 or levels.ndim != 1 or len(f) < 1 or z.shape != expected:
            raise ValueError("Tail calibration arrays have inconsistent shapes.")
        if len(levels) < 2 or not (np.all(levels > 0) and np.all(levels < 1)):
            raise ValueError("Tail calibration levels must lie in (0, 1).")
        if not (np.all(np.diff(f) > 0) and np.all(np.diff(levels) > 0)):
            raise ValueError("Tail calibration fractions and levels must increase.")
        if not np.all(np.isfinite(z)) or not np.all(np.diff(z, axis=-1) > 0):
            raise ValueError("Tail calibration quantiles must be finite and increasing.")
        self.f, self.levels, self.z, self.n = f, levels, z, n
        self._log_n = None if n is None else np.log(n)

    @classmethod
    def fit(
        cls,
        z: np.ndarray,
        f: np.ndarray,
        edges: Sequence[float] = TAIL_F_EDGES,
        levels: Sequence[float] = TAIL_LEVELS,
        min_errors: int = MIN_ERRORS_PER_RANGE,
        n: np.ndarray | None = None,
        n_edges: Sequence[float] = TAIL_N_EDGES,
    ) -> TailCalibration | None:
        """Quantiles of errors ``z`` measured at curve fractions ``f``; ``None`` if too few.

        With ``n`` (the context size of each error), one table per range of ``n_edges`` with
        ``min_errors`` errors or more; in it, a fraction range with fewer errors is widened
        to its neighbouring fraction ranges (same context sizes) until it has enough. With
        fewer than two such ranges the calibration has one table, as without ``n``.
        """
        z = np.asarray(z, dtype=np.float64)
        f = np.clip(np.asarray(f, dtype=np.float64), 0.0, 1.0)
        ok = np.isfinite(z) & np.isfinite(f)
        sizes = None
        if n is not None:
            sizes = np.asarray(n, dtype=np.float64)
            if sizes.shape != z.shape:
                raise ValueError("n must give one context size per error.")
            ok &= np.isfinite(sizes) & (sizes >= 1)
            sizes = sizes[ok]
        z, f = z[ok], f[ok]
        lv = np.asarray(levels, dtype=np.float64)
        ranges = []  # (centre, selection) of each fraction range with enough errors
        for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
            last = i == len(edges) - 2
            sel = (f >= lo) & ((f <= hi) if last else (f < hi))
            if sel.sum() >= min_errors:
                ranges.append((float(np.median(f[sel])), sel))
        if not ranges and len(z) >= min_errors:  # too few per range: one row for all fractions
            ranges.append((float(np.median(f)), np.ones(len(z), dtype=bool)))
        if not ranges:
            return None
        ranges.sort(key=lambda r: r[0])
        keep = np.concatenate([[True], np.diff([c for c, _ in ranges]) > 0])
        ranges = [r for r, k in zip(ranges, keep, strict=True) if k]
        centres = np.array([c for c, _ in ranges])
        pooled = np.array([_increasing_quantiles(z[sel], lv) for _, sel in ranges])
        tables, n_centres = [], []
        if sizes is not None:
            for lo, hi in itertools.pairwise(n_edges):
                in_n = (sizes >= lo) & (sizes < hi)
                if in_n.sum() < min_errors:
                    continue
                n_centres.append(float(np.median(sizes[in_n])))
                sels = [sel for _, sel in ranges]
                tables.append(
                    [
                        _increasing_quantiles(z[_widened(sels, j, in_n, min_errors)], lv)
                        for j in range(len(ranges))
                    ]
                )
        if len(tables) < 2 or np.any(np.diff(n_centres) <= 0):
            return cls(centres, lv, pooled)
        return cls(centres, lv, np.array(tables), np.array(n_centres))

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> TailCalibration | None:
        """The calibration stored in a model's arrays, or ``None`` when it has none."""
        if not all(k in arrays for k in CALIBRATION_NAMES):
            return None
        n = arrays.get(CONTEXT_NAME)
        return cls(arrays["tail_f"], arrays["tail_levels"], arrays["tail_z"], n)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store in a model file (:data:`CALIBRATION_NAMES`, and
        :data:`CONTEXT_NAME` for a calibration by context size)."""
        out = {"tail_f": self.f, "tail_levels": self.levels, "tail_z": self.z}
        if self.n is not None:
            out[CONTEXT_NAME] = self.n
        return out

    def _by_fraction(self, rows: np.ndarray, f: float) -> np.ndarray:
        if len(self.f) == 1:
            return rows[0]
        f = min(max(float(f), float(self.f[0])), float(self.f[-1]))
        j = int(np.clip(np.searchsorted(self.f, f) - 1, 0, len(self.f) - 2))
        w = (f - self.f[j]) / (self.f[j + 1] - self.f[j])
        return (1.0 - w) * rows[j] + w * rows[j + 1]

    def quantiles(self, f: float, n: float | None = None) -> np.ndarray:
        """The quantiles of ``z`` at curve fraction ``f`` (interpolated between ranges) and,
        for a calibration by context size, ``n`` completed trials (interpolated in ``log n``
        between the ranges' centres; required then)."""
        log_n = self._log_n
        if log_n is None:
            return self._by_fraction(self.z, f)
        if n is None or not math.isfinite(float(n)):
            raise ValueError("This tail calibration is by context size: pass n.")
        if len(log_n) == 1:
            return self._by_fraction(self.z[0], f)
        x = min(max(math.log(max(float(n), 1.0)), log_n[0]), log_n[-1])
        j = int(np.clip(np.searchsorted(log_n, x) - 1, 0, len(log_n) - 2))
        w = (x - log_n[j]) / (log_n[j + 1] - log_n[j])
        return (1.0 - w) * self._by_fraction(self.z[j], f) + w * self._by_fraction(
            self.z[j + 1], f
        )

    def survival(self, z: float, f: float, n: float | None = None) -> float:
        """``P(Z > z)`` for the standardised error after a curve fraction ``f`` with ``n``
        completed trials as context (``n`` is read only by a calibration by context size)."""
        if math.isnan(z):
            return math.nan
        q = self.quantiles(f, n)
        if z > q[-1]:
            top = _normal_sf(float(q[-1]))
            tail = _normal_sf(z) / top if top > 0 else 0.0
            return float((1.0 - self.levels[-1]) * tail)
        return float(1.0 - np.interp(z, q, self.levels))
