"""A box in a search space's unit-encoded feature space (see :class:`SpaceEncoder`).

Proposals are searched for inside a box: numerical features between per-feature bounds (equal
bounds pin a feature), and exactly one allowed choice per categorical one-hot group. The
sampler builds one per study from the user's ranges; meta-training uses the whole unit space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from optuna.distributions import CategoricalDistribution

from optuna_meta.space._encoding import SpaceEncoder


@dataclass(frozen=True)
class Box:
    """Per-feature bounds of the search in the model's unit space (lower == upper: pinned).

    ``groups`` lists the one-hot feature groups of categorical parameters with the allowed
    feature indices, so candidates choose exactly one allowed choice per group.
    """

    lower: np.ndarray
    upper: np.ndarray
    groups: tuple[tuple[np.ndarray, np.ndarray], ...] = ()  # (all indices, allowed indices)

    @classmethod
    def unit(cls, encoder: SpaceEncoder) -> Box:
        """The whole unit space of ``encoder``: every feature free, every choice allowed."""
        groups = tuple(
            (np.arange(sl.start, sl.stop), np.arange(sl.start, sl.stop))
            for name, sl in encoder.feature_slices.items()
            if isinstance(encoder.search_space[name], CategoricalDistribution)
        )
        n = encoder.n_features
        return cls(np.zeros(n), np.ones(n), groups)

    @property
    def free(self) -> np.ndarray:
        return self.upper > self.lower

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        X = self.lower + (self.upper - self.lower) * rng.random((n, len(self.lower)))
        for all_idx, allowed in self.groups:
            X[:, all_idx] = 0.0
            X[np.arange(n), rng.choice(allowed, n)] = 1.0
        return X

    def off_choices(self, X: np.ndarray) -> set[int]:
        """Rows of ``X`` whose choice in some categorical group is not an allowed one.

        :meth:`clip` would move such a row onto the first allowed choice and keep its other
        values: a configuration made for another choice (a design entry for ``rmsprop`` run
        with ``adam``), which no one chose.
        """
        out: set[int] = set()
        for all_idx, allowed in self.groups:
            chosen = all_idx[np.argmax(X[:, all_idx], axis=1)]
            out.update(np.flatnonzero(~np.isin(chosen, allowed)).tolist())
        return out

    def clip(self, X: np.ndarray) -> np.ndarray:
        """Project rows into the box: numeric features clipped, one allowed choice per group.

        A tuned categorical's features are not clipped first: its bounds are the default's
        one-hot (``lower == upper``), which would turn every choice into the default one.
        """
        blocks = [X[:, allowed] for _, allowed in self.groups]
        X = np.clip(X, self.lower, self.upper)
        for (all_idx, allowed), block in zip(self.groups, blocks, strict=True):
            pick = allowed[np.argmax(block, axis=1)]
            X[:, all_idx] = 0.0
            X[np.arange(len(X)), pick] = 1.0
        return X
