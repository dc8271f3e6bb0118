"""Loggers under Optuna's library root logger, so Optuna's logging settings apply to ours.

Why: a user silences or formats Optuna with ``optuna.logging.set_verbosity`` and
``optuna.logging.disable_default_handler``; a plugin's messages should follow the same switch
and print in the same ``[W <time>] ...`` format. Loggers named ``optuna_meta.*`` would sit
beside Optuna's, print through Python's last-resort handler and ignore both.

Example:
    .. code-block:: python

        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # MetaSampler's warnings too
"""

from __future__ import annotations

import logging

from optuna.logging import get_logger as _optuna_get_logger


def get_logger(name: str) -> logging.Logger:
    """The logger ``optuna.<name>`` (e.g. ``optuna.optuna_meta.sampler._sampler``)."""
    return _optuna_get_logger(f"optuna.{name}")
