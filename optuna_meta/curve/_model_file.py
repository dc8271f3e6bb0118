"""Curve model files: one ``.npz`` of float arrays plus an embedded JSON manifest.

The same rules as the sampler's surrogate files (:mod:`optuna_meta.surrogate._model_file`): no
pickle, only numeric arrays read with ``np.load(..., allow_pickle=False)`` and a UTF-8 JSON
manifest; foreign, corrupt, too new or too large files are refused with
:class:`~optuna_meta.surrogate.ModelFileError`. The manifest also records the feature layout
(:data:`~optuna_meta.curve._features.FEATURE_NAMES`, ``kappa``) so a file made for another
feature set is refused instead of silently mispredicting, and the command that made it.

Example:
    .. code-block:: python

        from optuna_meta.curve import CurveModel

        model = CurveModel.load("lcbench-curve")  # the shipped model, by name
        print(model.manifest["command"], model.manifest["training_tasks"])
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

from optuna_meta.curve._features import FEATURE_NAMES, KAPPA
from optuna_meta.curve._network import WEIGHT_NAMES, CurveNetwork
from optuna_meta.surrogate._model_file import (
    MANIFEST_KEY,
    MAX_MODEL_BYTES,
    ModelFileError,
    resolve_model_path,
)

FORMAT_NAME = "optuna-meta/curve"
FORMAT_VERSION = 1
DEFAULT_CURVE_MODEL = "lcbench-curve"


@dataclass
class CurveModel:
    """A meta-trained learning-curve model: network weights and provenance.

    Args:
        weights: The arrays of :data:`~optuna_meta.curve._network.WEIGHT_NAMES`.
        manifest: Free-form provenance (training tasks, metrics, command) saved as JSON.
    """

    weights: dict[str, np.ndarray]
    manifest: dict[str, Any] = field(default_factory=dict)

    def network(self) -> CurveNetwork:
        return CurveNetwork(self.weights)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to ``path`` (``.npz``) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str]) -> CurveModel:
        """Load a shipped model by name (``"lcbench-curve"``) or a model file by path.

        Raises:
            ModelFileError: The file is missing, not a curve model file, corrupt or too new.
        """
        path = resolve_model_path(name_or_path)
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise ModelFileError(f"{path} is larger than {MAX_MODEL_BYTES} bytes.")
        return cls._from_source(path, str(path))

    @classmethod
    def from_bytes(cls, data: bytes) -> CurveModel:
        """Inverse of :meth:`to_bytes`, with the same checks as :meth:`load`."""
        return cls._from_source(io.BytesIO(data), "<bytes>")

    def to_bytes(self) -> bytes:
        manifest = dict(self.manifest)
        manifest.update(
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            features=list(FEATURE_NAMES),
            kappa=KAPPA,
        )
        payload = {k: np.asarray(v, dtype=np.float32) for k, v in self.weights.items()}
        payload[MANIFEST_KEY] = np.frombuffer(
            json.dumps(manifest, sort_keys=True).encode("utf-8"), dtype=np.uint8
        )
        buf = io.BytesIO()
        np.savez_compressed(buf, **payload)
        return buf.getvalue()

    @classmethod
    def _from_source(cls, source: Path | io.BytesIO, path: str) -> CurveModel:
        try:
            with np.load(source, allow_pickle=False) as npz:
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
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise ModelFileError(
                f"{path} is not an optuna-meta curve model file (format {found!r}; "
                f"expected {FORMAT_NAME!r})."
            )
        version = manifest.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise ModelFileError(
                f"{path} has curve model format version {version!r}; this optuna-meta reads "
                f"versions 1..{FORMAT_VERSION}. Upgrade optuna-meta or re-train the model."
            )
        if manifest.get("features") != list(FEATURE_NAMES) or manifest.get("kappa") != KAPPA:
            raise ModelFileError(
                f"{path} was made for another feature layout than this optuna-meta's; "
                "re-train the model."
            )
        missing = [k for k in WEIGHT_NAMES if k not in arrays]
        if missing:
            raise ModelFileError(f"{path} lacks weight arrays {missing}.")
        weights = {k: arrays[k].astype(np.float64) for k in WEIGHT_NAMES}
        if not all(np.all(np.isfinite(w)) for w in weights.values()):
            raise ModelFileError(f"{path} holds non-finite weights.")
        try:
            net = CurveNetwork(weights)
        except ValueError as e:
            raise ModelFileError(f"{path}: {e}") from e
        if net.n_inputs != len(FEATURE_NAMES):
            raise ModelFileError(f"{path}: network input size and feature layout disagree.")
        return cls(weights=weights, manifest=manifest)
