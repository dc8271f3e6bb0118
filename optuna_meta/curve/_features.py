"""Scale-free features of a partial learning curve, in the context of a study's completed trials.

The same code builds the curve model's inputs at meta-training time (emulated studies on LCBench)
and inside :class:`~optuna_meta.MetaPruner`, so the two can never disagree.

Normalisation (:func:`build_context`), from the study's COMPLETED trials only:

* every value is oriented so that larger is better (``sign = -1`` for a minimised metric);
* ``centre`` = median of the completed trials' final values; ``scale`` = the largest of
  (best final - centre), the finals' inter-quartile range / 1.349, and 5 % of the 10-90 %
  spread of every value the completed curves reported (a floor for studies whose completed
  trials all end alike), floored by ``1e-9`` times the values' largest distance from the
  centre and by float resolution at their level; ``1e-9`` when every value is exactly 0;
* a value ``v`` becomes ``z = (v - centre) / scale`` and then ``a = asinh(z / KAPPA)``: linear
  near the completed trials, logarithmic far from them, so a diverged trial at 10 % accuracy and
  a loss of 1e6 stay finite inputs;
* a step becomes a fraction ``step / T`` of the final step ``T`` (``max_resource`` when given,
  else the largest last step of the completed trials).

Hence the model never sees the user's units: accuracy in % or in [0, 1], a loss, a reward all
give the same features for the same curve shapes.

Features of a trial observed up to fraction ``f`` (:func:`featurize`): ``f``; the trial's curve
at fixed fractions (with a mask for what is not observed yet) and at fractions of ``f``
(``0.1 f .. 0.9 f``); its last and best value; the completed curves' quantiles at ``f``; their
gains from ``f`` to the end; a kernel nearest-neighbour estimate of the final value from the
completed curves that looked alike up to ``f``; the best completed final; the number of completed
trials; and how reliably the completed curves' values at ``f`` foretell their finals
(:func:`rank_context`). The network (:mod:`optuna_meta.curve._network`) maps them to a Gaussian
over the final value's ``a``.

The last three inputs (:data:`RANK_FEATURE_NAMES`) were added in session 27; model files made
before read only the first :data:`N_BASE_FEATURES` (:data:`BASE_FEATURE_NAMES`) and are still
served (the network takes the leading inputs it was trained on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

KAPPA = 2.0
"""``a = asinh(z / KAPPA)``: the transform is linear within about KAPPA scales of the centre."""

GRID = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
"""Fixed fractions of T at which the observed curve is resampled (masked beyond ``f``)."""

REL = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
"""Fractions of the current fraction ``f`` at which the curve is resampled (shape of the past)."""

KNN_REL = np.array([0.5, 0.75, 0.9, 1.0])
"""Points (fractions of ``f``) compared between the trial and each completed curve."""

KNN_BANDWIDTH = 0.1
"""Kernel bandwidth of the nearest-neighbour estimate, in ``a`` units."""

FINE = np.linspace(0.0, 1.0, 65)
"""Completed curves are resampled on this grid once per context."""

MAX_CONTEXT_CURVES = 200
"""Completed curves kept for the in-context features (the best half and the latest half)."""

N_COUNT_REF = 200.0

MIN_RANK_CURVES = 3
"""Completed curves needed for a rank correlation and a line (fewer: neutral values)."""

RANK_MIN_SPREAD = 0.01
"""The completed curves' values at the trial's fraction must spread at least this share of
their finals' spread (standard deviations, ``a`` units) to inform :func:`rank_context`.

Why: below it their order at that fraction is noise, not a forecast. A Hugging Face
``Trainer`` run with the same seed reports the same early losses to within float32 noise
(1e-7), and every completed curve's plateau then read as a perfect rank correlation whose
line, extrapolated to the new trial's value, put it below every completed final: trials
identical to the completed ones so far were pruned at P = 0.005 (session 32 review)."""

RESID_FLOOR = 1e-3
"""Smallest residual standard deviation (``a`` units) before its log."""

SCALE_FLOOR = 1e-9
"""The study's scale is at least this fraction of its values' largest distance from their
median (relative, so a metric in any units and at any level is normalised alike; only a study
of near-constant curves reaches it)."""

RESID_PRIOR_WEIGHT = 2.0
"""Pseudo-observations of the finals' own variance in the line's residual variance: few
completed curves (or curves of one exact shape) cannot claim a near-perfect line."""

LINE_MARGIN = 2.0
"""The line's prediction is clipped to the completed finals' range widened by this (``a``)."""

BASE_FEATURE_NAMES: tuple[str, ...] = (
    "f",
    "sqrt_f",
    "coverage",
    "a_last",
    "a_best",
    *(f"rel_{r:g}" for r in REL),
    *(f"grid_{g:g}" for g in GRID),
    *(f"mask_{g:g}" for g in GRID),
    "ctx_q10",
    "ctx_q50",
    "ctx_q90",
    "ctx_max",
    "ctx_of_best",
    "gain_q50",
    "gain_q90",
    "knn_gain",
    "knn_final",
    "knn_neff",
    "knn_dist",
    "top_a",
    "n_completed",
)
"""The inputs of curve models made before the early-rank inputs (still served)."""
N_BASE_FEATURES = len(BASE_FEATURE_NAMES)

RANK_FEATURE_NAMES: tuple[str, ...] = ("ctx_rho", "ctx_lin_final", "ctx_lin_resid")
"""How reliably early values foretell finals in this study (:func:`rank_context`)."""

FEATURE_NAMES: tuple[str, ...] = BASE_FEATURE_NAMES + RANK_FEATURE_NAMES
"""The inputs of the curve network, in order."""
N_FEATURES = len(FEATURE_NAMES)
F_INDEX = FEATURE_NAMES.index("f")
"""Position of ``f``, the fraction of the final step seen (the tail calibration's key)."""
N_INDEX = FEATURE_NAMES.index("n_completed")
"""Position of the context-size input (the tail calibration's second key)."""


def context_sizes(X: np.ndarray) -> np.ndarray:
    """The completed trials each row of features ``X`` was computed with (from its
    ``n_completed`` input, ``log1p(n) / log1p(N_COUNT_REF)``, rounded)."""
    return np.round(np.expm1(np.asarray(X)[..., N_INDEX] * math.log1p(N_COUNT_REF)))


def to_a(z: np.ndarray | float) -> np.ndarray:
    """``z`` (scales from the centre) -> the model's ``a`` units."""
    return np.arcsinh(np.asarray(z, dtype=np.float64) / KAPPA)


def from_a(a: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`to_a`."""
    return KAPPA * np.sinh(np.asarray(a, dtype=np.float64))


@dataclass(frozen=True)
class _FinalsStats:
    """The completed finals' summaries that :func:`rank_context` reuses (``a`` units)."""

    neutral: np.ndarray
    rank_dev: np.ndarray
    rank_sd: float
    mean: float
    dev: np.ndarray
    var: float
    lo: float
    hi: float


@dataclass
class StudyContext:
    """A study's completed trials, normalised once (cached by the pruner per study and count).

    Attributes:
        sign: +1 when the study maximises, -1 when it minimises.
        centre, scale: Oriented values map to ``z = (sign * v - centre) / scale``.
        T: The final step (steps become fractions ``step / T``).
        finals: Oriented final values of every completed trial, sorted best first.
        n_completed: Completed trials with a finite value.
        curves: Completed curves in ``a`` units on :data:`FINE` (at most
            :data:`MAX_CONTEXT_CURVES` rows); ``finals_a`` their finals in ``a`` units.
        order: The ``order`` given to :func:`build_context` for those rows (the pruner passes
            trial numbers), or ``None``: what each row is, across contexts of one study.
    """

    sign: float
    centre: float
    scale: float
    T: float
    finals: np.ndarray
    n_completed: int
    curves: np.ndarray
    finals_a: np.ndarray
    best_row: int
    top_a: float
    order: np.ndarray | None = None

    @cached_property
    def finals_stats(self) -> _FinalsStats:
        """What :func:`rank_context` needs of the finals alone: computed once per context,
        not at every prune call."""
        fin = self.finals_a
        spread = float(fin.std()) if len(fin) > 1 else 1.0
        neutral = np.array(
            [0.0, float(np.median(fin)), math.log(max(spread, RESID_FLOOR))], dtype=np.float64
        )
        ranks = average_ranks(fin)
        mean = float(fin.mean())
        return _FinalsStats(
            neutral=neutral,
            rank_dev=ranks - ranks.mean(),
            rank_sd=float(ranks.std()),
            mean=mean,
            dev=fin - fin.mean(),
            var=float(fin.var()),
            lo=float(fin.min()),
            hi=float(fin.max()),
        )

    def z(self, oriented: np.ndarray | float) -> np.ndarray:
        return (np.asarray(oriented, dtype=np.float64) - self.centre) / self.scale

    def a(self, oriented: np.ndarray | float) -> np.ndarray:
        return to_a(self.z(oriented))

    def to_user(self, a: np.ndarray | float) -> np.ndarray:
        """``a`` units -> the user's units and direction."""
        return self.sign * (self.centre + self.scale * from_a(a))


def clean_curve(
    steps: np.ndarray, values: np.ndarray, sign: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted steps and oriented values, non-finite values and duplicate steps dropped."""
    steps = np.asarray(steps, dtype=np.float64)
    values = sign * np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & np.isfinite(steps)
    steps, values = steps[ok], values[ok]
    if len(steps) > 1 and np.any(np.diff(steps) <= 0):
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        keep = np.append(np.diff(steps) > 0, True)  # the last report of a step wins
        steps, values = steps[keep], values[keep]
    return steps, values


def build_context(
    curves: list[tuple[np.ndarray, np.ndarray]],
    finals: np.ndarray,
    sign: float,
    T: float | None = None,
    order: np.ndarray | None = None,
) -> StudyContext | None:
    """Normalise a study's completed trials; ``None`` when nothing can be predicted.

    Args:
        curves: Per completed trial ``(steps, oriented values)`` as returned by
            :func:`clean_curve` (an empty pair when the trial reported nothing).
        finals: Oriented final values, aligned with ``curves`` (non-finite ones are ignored).
        sign: +1 (maximise) or -1 (minimise), kept to map predictions back.
        T: The final step; ``None``: the largest last step of the completed curves.
        order: Optional recency rank of each trial (larger = more recent) for the curve cap.
    """
    finals = np.asarray(finals, dtype=np.float64)
    ok = np.isfinite(finals)
    if not ok.any():
        return None
    idx = np.nonzero(ok)[0]
    with_curve = [i for i in idx if len(curves[i][0]) > 0]
    if not with_curve:
        return None
    if T is None:
        T = float(max(curves[i][0][-1] for i in with_curve))
    if not T > 0:
        return None
    F = finals[idx]
    centre = float(np.median(F))
    top = float(F.max())
    q25, q75 = _quantiles(F, (0.25, 0.75))
    pooled = np.concatenate([curves[i][1] for i in with_curve] + [F])
    q10, q90 = _quantiles(pooled, (0.1, 0.9))
    scale = max(top - centre, (q75 - q25) / 1.349, 0.05 * (q90 - q10))
    # The floor follows the values' own spread, and float resolution at their level: an
    # absolute floor swamped metrics whose spread is below 1e-9 (a loss in units of 1e-12),
    # and one set by their level made a constant added to every report change decisions.
    spread = float(np.max(np.abs(pooled - centre)))
    level = max(abs(centre), float(np.max(np.abs(pooled))))
    resolution = 8 * np.finfo(np.float64).eps * level
    scale = max(float(scale), SCALE_FLOOR * spread, resolution)
    if not scale > 0:
        # Every completed value is exactly 0 (an error rate on an easy validation set): no
        # spread and no level to go by. The smallest float put a trial reporting 0.02 some
        # 700 asinh units out, where the network's output overflowed.
        scale = SCALE_FLOOR
    if len(with_curve) > MAX_CONTEXT_CURVES:
        half = MAX_CONTEXT_CURVES // 2
        rank = np.asarray(order if order is not None else np.arange(len(finals)))
        wc = np.asarray(with_curve)
        best = wc[np.argsort(-finals[wc], kind="stable")[:half]]
        is_best = np.zeros(len(finals), dtype=bool)
        is_best[best] = True
        rest = wc[~is_best[wc]]
        recent = rest[np.argsort(-rank[rest], kind="stable")[: MAX_CONTEXT_CURVES - half]]
        with_curve = sorted(np.concatenate([best, recent]).tolist())
    rows = np.empty((len(with_curve), len(FINE)))
    # Trials of a study usually report at the same steps: resample each such group at once.
    groups: dict[bytes, list[int]] = {}
    for r, i in enumerate(with_curve):
        groups.setdefault(curves[i][0].tobytes(), []).append(r)
    for rs in groups.values():
        s = curves[with_curve[rs[0]]][0]
        A = to_a((np.stack([curves[with_curve[r]][1] for r in rs]) - centre) / scale)
        if len(s) == 1:
            rows[rs] = A[:, :1]
            continue
        # linear interpolation of every row at FINE == np.interp row by row
        pos = np.interp(FINE, np.minimum(s / T, 1.0), np.arange(len(s), dtype=np.float64))
        lo = np.minimum(pos.astype(np.int64), len(s) - 2)
        w = pos - lo
        rows[rs] = A[:, lo] * (1.0 - w) + A[:, lo + 1] * w
    finals_a = to_a((finals[with_curve] - centre) / scale)
    return StudyContext(
        sign=float(sign),
        centre=centre,
        scale=scale,
        T=float(T),
        finals=np.sort(F)[::-1],
        n_completed=len(F),
        curves=rows,
        finals_a=finals_a,
        best_row=int(np.argmax(finals_a)),
        top_a=float(to_a((top - centre) / scale)),
        order=None if order is None else np.asarray(order)[with_curve],
    )


def _quantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(x, 100 * qs)`` (linear), without its overhead (partial sort only)."""
    n = len(x)
    pos = [q * (n - 1) for q in qs]
    lo = [min(int(p), n - 1) for p in pos]
    hi = [min(i + 1, n - 1) for i in lo]
    xs = np.partition(x, sorted(set(lo + hi))) if n > 64 else np.sort(x)
    return [float(xs[a] + (xs[b] - xs[a]) * (p - a)) for p, a, b in zip(pos, lo, hi, strict=True)]


def _at(curves: np.ndarray, fracs: np.ndarray) -> np.ndarray:
    """Linear interpolation of the FINE-grid ``curves`` (m, G) at ``fracs`` -> (m, len)."""
    pos = np.clip(fracs, 0.0, 1.0) * (len(FINE) - 1)
    lo = np.minimum(pos.astype(np.int64), len(FINE) - 2)
    w = pos - lo
    return curves[:, lo] * (1.0 - w) + curves[:, lo + 1] * w


def featurize(ctx: StudyContext, steps: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """The model's input vector for a trial observed at ``steps`` with oriented ``values``.

    ``steps``/``values`` must come from :func:`clean_curve` (sorted, finite). Returns ``None``
    when the trial has reported nothing.
    """
    if len(steps) == 0:
        return None
    fr = np.minimum(np.asarray(steps, dtype=np.float64) / ctx.T, 1.0)
    a = ctx.a(values)
    if len(fr) > 1 and fr[-2] >= fr[-1]:  # steps beyond T collapse onto 1.0: keep the last
        keep = np.append(np.diff(fr) > 0, True)
        fr, a = fr[keep], a[keep]
    f = float(fr[-1])
    a_last = float(a[-1])
    out = np.empty(N_FEATURES)
    out[0] = f
    out[1] = math.sqrt(max(f, 0.0))
    out[2] = fr[0] / f if f > 0 else 1.0
    out[3] = a_last
    out[4] = float(a.max())
    k = 5
    out[k : k + len(REL)] = np.interp(f * REL, fr, a)
    k += len(REL)
    mask = GRID <= f + 1e-9
    out[k : k + len(GRID)] = np.where(mask, np.interp(GRID, fr, a), 0.0)
    k += len(GRID)
    out[k : k + len(GRID)] = mask
    k += len(GRID)
    pts = _at(ctx.curves, f * KNN_REL)  # (m, 4)
    at_f = pts[:, -1]
    q10, q50, q90 = _quantiles(at_f, (0.1, 0.5, 0.9))
    gains = ctx.finals_a - at_f
    g50, g90 = _quantiles(gains, (0.5, 0.9))
    query = np.interp(f * KNN_REL, fr, a)
    d2 = np.mean((pts - query) ** 2, axis=1)
    d2_min = float(d2.min())
    w = np.exp(-(d2 - d2_min) / (2.0 * KNN_BANDWIDTH**2))
    # The nearest curve always has weight 1; far-away ones add nothing.
    w_far = math.exp(-d2_min / (2.0 * KNN_BANDWIDTH**2))
    sw = float(w.sum())
    out[k : k + 10] = (
        q10,
        q50,
        q90,
        float(at_f.max()),
        float(at_f[ctx.best_row]),
        g50,
        g90,
        a_last + float(w @ gains) / sw,
        float(w @ ctx.finals_a) / sw,
        math.log1p(w_far * sw * sw / float(w @ w)),
    )
    k += 10
    out[k] = math.sqrt(d2_min)
    out[k + 1] = ctx.top_a
    out[k + 2] = math.log1p(ctx.n_completed) / math.log1p(N_COUNT_REF)
    out[N_BASE_FEATURES:] = rank_context(ctx, at_f, a_last)
    return out


def rank_context(ctx: StudyContext, at_f: np.ndarray, a_last: float) -> np.ndarray:
    """How well the completed curves' values at the trial's fraction foretell their finals.

    Why: after a few epochs the network alone can only know how uncertain a final value is on
    the studies it was trained on. In a study whose completed curves keep their early order it
    can be surer; in one whose curves cross (learning-rate schedules, late over-fitting) it
    should not be. Three inputs, from the completed curves' values ``at_f`` at the trial's
    fraction and their finals (``a`` units):

    * ``ctx_rho``: Spearman's rank correlation of ``at_f`` with the finals;
    * ``ctx_lin_final``: the final that the least-squares line through (``at_f``, final) gives
      the trial's last value ``a_last``, kept within :data:`LINE_MARGIN` of the finals' range;
    * ``ctx_lin_resid``: the log of that line's residual standard deviation, its variance
      shrunk towards the finals' own by :data:`RESID_PRIOR_WEIGHT` pseudo-observations.
      Without the shrinkage a few curves, or curves of one exact shape (synthetic studies),
      gave a near-zero residual that the network never met with many curves in training, and
      it then pruned the study's next leader after two of 50 steps.

    With fewer than :data:`MIN_RANK_CURVES` completed curves, or when ``at_f`` is constant (it
    spreads less than :data:`RANK_MIN_SPREAD` of the finals), they are 0, the finals' median and
    the log of their spread.

    On LCBench (task cross-validation, TPE, nine seeds) they lowered MetaPruner's regret at 520
    and 1040 epochs and left it level later; ``benchmarks/README.md``, "The early-rank inputs
    become the default".
    """
    fin = ctx.finals_a
    st = ctx.finals_stats
    if len(fin) < MIN_RANK_CURVES:
        return st.neutral.copy()
    sx = float(at_f.std())
    if sx <= _flat_spread(st):
        return st.neutral.copy()
    rx = average_ranks(at_f)
    srx = float(rx.std())
    rho = (
        float(np.mean((rx - rx.mean()) * st.rank_dev) / (srx * st.rank_sd))
        if st.rank_sd > 0
        else 0.0
    )
    beta = float(np.mean((at_f - at_f.mean()) * st.dev)) / sx**2
    alpha = st.mean - beta * float(at_f.mean())
    resid = fin - (alpha + beta * at_f)
    prior = RESID_PRIOR_WEIGHT * st.var
    sd = math.sqrt((float(resid @ resid) + prior) / (len(fin) - 2 + RESID_PRIOR_WEIGHT))
    line = alpha + beta * a_last
    line = min(max(line, st.lo - LINE_MARGIN), st.hi + LINE_MARGIN)
    return np.array([rho, line, math.log(max(sd, RESID_FLOOR))], dtype=np.float64)


def _flat_spread(st: _FinalsStats) -> float:
    """A spread of the completed curves' values at one fraction (``a`` units) at or below
    which they tell nothing of their finals: :data:`RANK_MIN_SPREAD` of the finals' spread,
    1e-9 at least (:func:`rank_context`, :func:`indistinguishable`)."""
    return max(1e-9, RANK_MIN_SPREAD * math.sqrt(st.var))


def indistinguishable(ctx: StudyContext, steps: np.ndarray, values: np.ndarray) -> bool:
    """Whether nothing tells the trial's curve so far from the completed ones: at its latest
    fraction their values spread less than :data:`RANK_MIN_SPREAD` of the finals' spread
    (1e-9 ``a`` units at least), and the trial's last value lies within that band too.

    Why: a study whose classifiers sit at chance for their first epochs (every curve reports
    0.1) gave each new trial a probability of 0.01 of beating the one completed trial, whose
    early curve was the very same, and pruned all of them. Such a trial is exchangeable with
    the completed ones (MetaPruner then takes at least their share that beat the target).
    ``steps``/``values`` as for :func:`featurize`.
    """
    if len(steps) == 0:
        return False
    f = min(float(steps[-1]) / ctx.T, 1.0)
    # The completed curves at the last grid point not after the trial's step: interpolating
    # towards the next one would mix in a rise that starts after it.
    at_f = ctx.curves[:, math.floor(f * (len(FINE) - 1) + 1e-9)]
    a_last = float(ctx.a(float(values[-1])))
    tol = _flat_spread(ctx.finals_stats)
    lo, hi = float(at_f.min()), float(at_f.max())
    return hi - lo <= tol and lo - tol <= a_last <= hi + tol


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, ties sharing their average rank (``scipy.stats.rankdata``'s
    default, without importing scipy in the pruner's process)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]  # the first element of each group of ties
    starts = np.nonzero(first)[0]
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = (0.5 * (starts + ends + 1))[np.cumsum(first) - 1]
    return ranks
