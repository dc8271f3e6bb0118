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


TPE_RECAL = meta_pruner_method(
    "tpe_meta_recal",
    "TPE + MetaPruner() [recalibrated on the study's completed curves; session 26 "
    "variant; 5-fold task CV]",
    pruner_class=RecalPruner,
    version_tag=f"+recal{VARIANT_VERSION}",
)
