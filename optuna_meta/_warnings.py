"""Point a warning at the user's line, not at Optuna's or optuna-meta's.

Why: MetaSampler warns from deep inside Optuna's call chain (``study.optimize`` -> ``ask`` ->
``trial.suggest_float`` -> the sampler). A fixed ``stacklevel`` lands in one of Optuna's
frames (``optuna/trial/_trial.py:170: UserWarning``), which says nothing of where the user's
study asked, and defeats ``warnings.filterwarnings(..., module=...)`` on the user's module.
"""

from __future__ import annotations

import os
import sys

import optuna

_PACKAGES = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (optuna, sys.modules[__name__.partition(".")[0]])
    if module.__file__
)
"""The folders of Optuna and optuna-meta: frames there are library code."""


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the caller that names the first frame
    outside Optuna and optuna-meta: the user's ``trial.suggest_*``, ``study.optimize`` or
    ``study.ask`` line (1, the caller itself, when no such frame exists).

    Example:
        .. code-block:: python

            warnings.warn("...", stacklevel=user_stacklevel())
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGES):
        frame = frame.f_back
        level += 1
    return level if frame is not None else 1
