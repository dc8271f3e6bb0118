"""Surrogate model files: one ``.npz`` of float arrays plus an embedded JSON manifest.

A model file must be safe to load from an untrusted source, so it holds nothing that executes
code: numeric arrays read with ``np.load(..., allow_pickle=False)`` and a JSON manifest stored
as UTF-8 bytes. The manifest names the format and version (foreign or newer files are refused
with a clear error), the canonical search space the model was trained on (Optuna distributions
as JSON), the per-parameter defaults used when a study does not tune a parameter, the training
tasks, and validation metrics.

Example:
    .. code-block:: python

        from optuna_meta.surrogate import SurrogateModel

        model = SurrogateModel.load("lcbench-mlp")  # a shipped model, by name
        model = SurrogateModel.load("my_model.npz")  # or a file of your own
        print(model.manifest["training_tasks"])
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution

from optuna_meta.surrogate._network import WEIGHT_NAMES, DeepKernelGP

FORMAT_NAME = "optuna-meta/surrogate"
FORMAT_VERSION = 1
MANIFEST_KEY = "manifest"
MAX_MODEL_BYTES = 50 * 1024 * 1024
"""Refuse to read model files larger than this: shipped models are < 5 MB."""

_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "lcbench-mlp"


class ModelFileError(ValueError):
    """A model file is missing, corrupt, foreign or of an unsupported version."""


@dataclass
class SurrogateModel:
    """A meta-trained surrogate: network weights, its search space and provenance.

    Args:
        weights: The arrays of :data:`~optuna_meta.surrogate._network.WEIGHT_NAMES`.
        search_space: Canonical parameter names -> Optuna distributions; the order is the
            order of the network's input features (see :class:`optuna_meta.space.SpaceEncoder`).
        defaults: A value for every parameter, used when a study does not tune it.
        manifest: Free-form provenance (training tasks, metrics, command) saved as JSON.
    """

    weights: dict[str, np.ndarray]
    search_space: dict[str, BaseDistribution]
    defaults: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = set(self.search_space) - set(self.defaults)
        if missing:
            raise ModelFileError(f"Model defaults lack parameters {sorted(missing)}.")

    def network(self) -> DeepKernelGP:
        return DeepKernelGP(self.weights)

    # -- IO -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to ``path`` (``.npz``) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str]) -> SurrogateModel:
        """Load a shipped model by name (e.g. ``"lcbench-mlp"``) or a model file by path.

        Raises:
            ModelFileError: The file is missing, not a model file, corrupt or too new.
        """
        path = resolve_model_path(name_or_path)
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise ModelFileError(f"{path} is larger than {MAX_MODEL_BYTES} bytes.")
        return cls._from_source(path, str(path))

    @classmethod
    def _from_source(cls, source: Path | io.BytesIO, path: str) -> SurrogateModel:
        try:
            npz = np.load(source, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):  # a single .npy array
                raise ValueError("a single array, not an .npz archive")
            with npz:
                arrays = {k: npz[k] for k in npz.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            raise ModelFileError(f"{path} is not a readable optuna-meta model file: {e}") from e
        if MANIFEST_KEY not in arrays:
            raise ModelFileError(f"{path} has no manifest: not an optuna-meta model file.")
        try:
            manifest = json.loads(arrays.pop(MANIFEST_KEY).tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{path} has a corrupt manifest: {e}") from e
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ModelFileError(f"{path} is not an optuna-meta surrogate model file.")
        version = manifest.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise ModelFileError(
                f"{path} has model format version {version!r}; this optuna-meta reads versions "
                f"1..{FORMAT_VERSION}. Upgrade optuna-meta or re-train the model."
            )
        missing = [k for k in WEIGHT_NAMES if k not in arrays]
        if missing:
            raise ModelFileError(f"{path} lacks weight arrays {missing}.")
        weights = {k: arrays[k].astype(np.float64) for k in WEIGHT_NAMES}
        if not all(np.all(np.isfinite(w)) for w in weights.values()):
            raise ModelFileError(f"{path} holds non-finite weights.")
        bad_shapes = _bad_weight_shapes(weights)
        if bad_shapes:
            raise ModelFileError(f"{path} holds weight arrays of the wrong shape: {bad_shapes}.")
        try:
            space = {k: json_to_distribution(v) for k, v in manifest["search_space"].items()}
            defaults = dict(manifest["defaults"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path} has an invalid search space: {e}") from e
        n_in = weights["W1"].shape[0]
        from optuna_meta.space import SpaceEncoder

        if SpaceEncoder(space).n_features != n_in:
            raise ModelFileError(f"{path}: search space and network input size disagree.")
        try:
            DeepKernelGP(weights)
        except ValueError as e:
            raise ModelFileError(f"{path}: {e}") from e
        return cls(weights=weights, search_space=space, defaults=defaults, manifest=manifest)

    def to_bytes(self) -> bytes:
        """The file's bytes (also how a pickled sampler carries its model: no array pickling)."""
        manifest = dict(self.manifest)
        manifest.update(
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            search_space={k: distribution_to_json(v) for k, v in self.search_space.items()},
            defaults=self.defaults,
        )
        payload = {k: np.asarray(v, dtype=np.float32) for k, v in self.weights.items()}
        payload[MANIFEST_KEY] = np.frombuffer(
            json.dumps(manifest, sort_keys=True).encode("utf-8"), dtype=np.uint8
        )
        buf = io.BytesIO()
        np.savez_compressed(buf, **payload)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SurrogateModel:
        """Inverse of :meth:`to_bytes`, with the same checks as :meth:`load`."""
        return cls._from_source(io.BytesIO(data), "<bytes>")


def _bad_weight_shapes(weights: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Arrays whose shape does not fit the network (a corrupt file loads, then fails later)."""
    if any(weights[k].ndim != 2 for k in ("W1", "W2", "Wf")):
        return {k: weights[k].shape for k in ("W1", "W2", "Wf") if weights[k].ndim != 2}
    (d, h), h2, f = weights["W1"].shape, weights["W2"].shape[1], weights["Wf"].shape[1]
    expected = {"W1": (d, h), "b1": (h,), "W2": (h, h2), "b2": (h2,), "Wf": (h2, f)}
    expected.update(bf=(f,), wm=(h2,))
    return {k: weights[k].shape for k in WEIGHT_NAMES if weights[k].shape != expected.get(k, ())}


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in _MODELS_DIR.glob("*.npz"))


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped model's name or a file path -> an existing file path (or ModelFileError)."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if isinstance(name_or_path, str) and os.sep not in name_or_path:
        shipped = _MODELS_DIR / f"{name_or_path.removesuffix('.npz')}.npz"
        if shipped.is_file():
            return shipped
    raise ModelFileError(
        f"No model file {str(name_or_path)!r}: pass a path to a .npz model file or one of the "
        f"shipped models {shipped_models()}."
    )
