"""MetaPruner whose probabilities are recalibrated on the study's own completed curves.

Why: on real curves the shipped curve model is over-confident (``benchmarks/real_calibration``:
checks it gave under 1 % ended above their target 9.8 % of the time after 2-3 of 20 epochs),
because those curves are unlike LCBench's. Every completed trial of the study is a test case
with a known answer: cut its curve at the queried trial's steps, predict its final from the
other completed trials, and the standardised errors ``z = (final - mean) / sd`` show how the
model errs on *this* study. The variant shifts and widens (or narrows) each prediction by
them: ``z`` is modelled as ``N(b, s^2)``, with ``b`` the errors' mean and ``s^2`` their
variance, both shrunk towards ``N(0, 1)`` as if :data:`PRIOR_CHECKS` errors of the model's own
calibration had been seen too; the probability of improvement is the calibrated tail at
``((target - mean) / sd - b) / s``. It uses the :data:`N_RECAL` latest completed curves, once
per context and reporting schedule (cached), with at least :data:`MIN_RECAL` of them.

Run::

    python -m benchmarks.real_calibration --seeds 0-4 --models meta,recal
    python -m benchmarks.run_pruners --full --seeds 0-2 --no-report \\
        --extra benchmarks.recal_pruner:TPE_RECAL

The results are in ``benchmarks/README.md``, "In-context recalibration".
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from benchmarks.meta_pruner_methods import meta_pruner_method
from optuna_meta import MetaPruner
from optuna_meta.curve import StudyContext
from optuna_meta.curve._features import _at, from_a

N_RECAL = 10
"""Latest completed curves used as test cases."""
MIN_RECAL = 3
"""Fewer completed curves: no recalibration."""
PRIOR_CHECKS = 10.0
"""Weight of the model's own calibration, in errors."""
VARIANT_VERSION = 1


def _without(ctx: StudyContext, j: int) -> StudyContext:
    """``ctx`` without completed curve ``j`` (its centre and scale kept)."""
    finals_a = np.delete(ctx.finals_a, j)
    return dataclasses.replace(
        ctx,
        curves=np.delete(ctx.curves, j, axis=0),
        finals_a=finals_a,
        best_row=int(np.argmax(finals_a)),
        top_a=float(finals_a.max()),
        n_completed=ctx.n_completed - 1,
        order=None if ctx.order is None else np.delete(ctx.order, j),
    )


class RecalPruner(MetaPruner):
    """MetaPruner with its errors on the study's completed curves folded into each prediction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recal: dict[tuple, tuple[float, float]] = {}
        self._recal_ctx: StudyContext | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_recal"], state["_recal_ctx"] = {}, None
        return state

    def shift(self, ctx: StudyContext, steps: np.ndarray) -> tuple[float, float]:
        """``(b, s)``: the shrunk mean and sd of the model's errors on the completed curves."""
        m_all = len(ctx.finals_a)
        if m_all < MIN_RECAL + 1:
            return 0.0, 1.0
        with self._lock:
            if self._recal_ctx is not ctx:
                self._recal_ctx, self._recal = ctx, {}
            key = steps.tobytes()
            hit = self._recal.get(key)
        if hit is not None:
            return hit
        net, _ = self._network()
        fr = np.minimum(steps / ctx.T, 1.0)
        rows = range(max(0, m_all - N_RECAL), m_all)
        X, y = [], []
        for j in rows:
            vals = ctx.centre + ctx.scale * from_a(_at(ctx.curves[j : j + 1], fr)[0])
            x = self._features(_without(ctx, j), None, steps, vals)  # type: ignore[arg-type]
            if x is not None:
                X.append(x)
                y.append(ctx.finals_a[j])
        if len(X) < MIN_RECAL:
            out = (0.0, 1.0)
        else:
            mu, sd = net.predict(np.stack(X))
            z = (np.asarray(y) - mu) / sd
            m = len(z)
            b = float(z.mean()) * m / (m + PRIOR_CHECKS)
            s = math.sqrt((m * float(z.var()) + PRIOR_CHECKS) / (m + PRIOR_CHECKS))
            out = (b, s)
        with self._lock:
            if self._recal_ctx is ctx:
                self._recal[key] = out
        return out

    def _adjust(
        self, ctx: StudyContext, steps: np.ndarray, mu: float, sd: float
    ) -> tuple[float, float]:
        b, s = self.shift(ctx, steps)
        return mu + b * sd, sd * s


class CheapRecalPruner(RecalPruner):
    """:class:`RecalPruner` with each completed curve's errors computed once.

    Why: ``RecalPruner`` predicted the latest :data:`N_RECAL` completed curves again in every
    new context (each completion) and at every reporting schedule, so a trial's prune calls
    took about 4 times as long. Here a completed curve's standardised error at a schedule
    (cut at the queried trial's steps) is computed the first time it is needed, with the
    other curves of the context of that moment, and kept: trials of a study share a
    schedule, so each curve costs at most one prediction per step of the schedule over the
    whole study. Curves are known by trial number (``StudyContext.order``; one pruner serves
    one study here, as in the benchmarks); ``latest`` means first seen; ``b`` and ``s`` are
    shrunk as in ``RecalPruner``.
    """

    rescue_only = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._order: dict[int, int] = {}
        self._z: dict[tuple[int, bytes], float | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_order"], state["_z"] = {}, {}
        return state

    def shift(self, ctx: StudyContext, steps: np.ndarray) -> tuple[float, float]:
        m_all = len(ctx.finals_a)
        if m_all < MIN_RECAL + 1 or ctx.order is None:
            return 0.0, 1.0
        keys = [int(k) for k in ctx.order]  # the rows' trial numbers
        sched = steps.tobytes()
        with self._lock:
            for k in keys:
                self._order.setdefault(k, len(self._order))
            rows = sorted(range(m_all), key=lambda j: self._order[keys[j]])[-N_RECAL:]
            todo = [j for j in rows if (keys[j], sched) not in self._z]
        if todo:
            net, _ = self._network()
            fr = np.minimum(steps / ctx.T, 1.0)
            X, got = [], []
            for j in todo:
                vals = ctx.centre + ctx.scale * from_a(_at(ctx.curves[j : j + 1], fr)[0])
                x = self._features(_without(ctx, j), None, steps, vals)  # type: ignore[arg-type]
                if x is not None:
                    X.append(x[: net.n_inputs])
                    got.append(j)
            found: dict[int, float] = {}
            if X:
                mu, sd = net.predict(np.stack(X))
                found = {
                    j: float((ctx.finals_a[j] - m) / s)
                    for j, m, s in zip(got, mu, sd, strict=True)
                }
            with self._lock:
                for j in todo:
                    self._z[(keys[j], sched)] = found.get(j)
        with self._lock:
            zs = [self._z.get((keys[j], sched)) for j in rows]
        z = np.array([v for v in zs if v is not None and math.isfinite(v)])
        if len(z) < MIN_RECAL:
            return 0.0, 1.0
        m = len(z)
        b = float(z.mean()) * m / (m + PRIOR_CHECKS)
        s = math.sqrt((m * float(z.var()) + PRIOR_CHECKS) / (m + PRIOR_CHECKS))
        if self.rescue_only:
            b, s = max(b, 0.0), max(s, 1.0)
        return b, s


class RescueRecalPruner(CheapRecalPruner):
    """:class:`CheapRecalPruner` that may only keep trials the model alone would prune.

    Why: shifted down and narrowed by the errors of a few completed curves, the prediction
    can put every new trial below the target; with no trial completing the context never
    changes, and the study prunes everything from then on (``tpe_meta_recal2`` on LCBench task
    189908, seed 1: 4145 trials, 5 completed). Here the shift is at least 0 and the scale at
    least 1, so a trial's probability of improvement (below one half) only grows.
    """

    rescue_only = True


TPE_RECAL = meta_pruner_method(
    "tpe_meta_recal",
    "TPE + MetaPruner() [recalibrated on the study's completed curves; session 26 "
    "variant; 5-fold task CV]",
    pruner_class=RecalPruner,
    version_tag=f"+recal{VARIANT_VERSION}",
)

TPE_RECAL2 = meta_pruner_method(
    "tpe_meta_recal2",
    "TPE + MetaPruner() [recalibrated on the study's completed curves, each curve's errors "
    "computed once; session 28 variant; 5-fold task CV]",
    pruner_class=CheapRecalPruner,
    version_tag=f"+recal2-{VARIANT_VERSION}",
)

TPE_RECAL3 = meta_pruner_method(
    "tpe_meta_recal3",
    "TPE + MetaPruner() [recalibrated on the study's completed curves, shift >= 0 and scale "
    ">= 1 only; session 28 variant; 5-fold task CV]",
    pruner_class=RescueRecalPruner,
    version_tag=f"+recal3-{VARIANT_VERSION}",
)
