"""The one safe container for every optuna-meta model file: ``.npz`` arrays + JSON manifest.

Why one module: the sampler's surrogate and the pruner's curve model are different networks,
but a file of either kind must be safe to load from an untrusted source, and the rules that make
it safe must not drift apart. A file holds nothing that executes code: numeric arrays read with
``np.load(..., allow_pickle=False)`` and a JSON manifest stored as UTF-8 bytes under
:data:`MANIFEST_KEY`. The manifest names the format and version; foreign, corrupt, too new or
too large files are refused with :class:`ModelFileError`. Each model class adds its own checks
(search space, feature layout, weight shapes) on top.

Example:
    .. code-block:: python

        arrays, manifest, label = read_model_file(
            "lcbench-mlp", "optuna-meta/surrogate", 1, "surrogate"
        )
        weights = finite_weights(arrays, ("W1", "b1"), label)
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

MANIFEST_KEY = "manifest"
MAX_MODEL_BYTES = 50 * 1024 * 1024
"""Refuse to read model files larger than this: shipped models are < 5 MB."""

MODELS_DIR = Path(__file__).resolve().parent / "models"
"""Where the shipped models live (loadable by name)."""


class ModelFileError(ValueError):
    """A model file is missing, corrupt, foreign or of an unsupported version."""


_F = TypeVar("_F", bound="ModelFile")


class ModelFile:
    """The file side of a model class: it provides ``to_bytes`` and ``_from_source``.

    ``_from_source`` takes a shipped model's name, a path or the file's bytes, reads it with
    :func:`read_model_file` and adds the model's own checks.
    """

    def to_bytes(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def _from_source(cls: type[_F], source: str | os.PathLike[str] | bytes) -> _F:
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to ``path`` (``.npz``) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls: type[_F], name_or_path: str | os.PathLike[str]) -> _F:
        """Load a shipped model by name (e.g. ``"lcbench-mlp"``) or a model file by path.

        Raises:
            ModelFileError: The file is missing, not a model file of this kind, corrupt or too
                new.
        """
        return cls._from_source(name_or_path)

    @classmethod
    def from_bytes(cls: type[_F], data: bytes) -> _F:
        """Inverse of :meth:`to_bytes`, with the same checks as :meth:`load`."""
        return cls._from_source(bytes(data))


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.npz"))


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped model's name or a file path -> an existing file path (or ModelFileError)."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if isinstance(name_or_path, str) and os.sep not in name_or_path:
        shipped = MODELS_DIR / f"{name_or_path.removesuffix('.npz')}.npz"
        if shipped.is_file():
            return shipped
    raise ModelFileError(
        f"No model file {str(name_or_path)!r}: pass a path to a .npz model file or one of the "
        f"shipped models {shipped_models()}."
    )


def model_bytes(weights: Mapping[str, np.ndarray], manifest: Mapping[str, Any]) -> bytes:
    """The bytes of a model file: ``weights`` as float32 arrays, ``manifest`` as JSON."""
    payload = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    payload[MANIFEST_KEY] = np.frombuffer(
        json.dumps(dict(manifest), sort_keys=True).encode("utf-8"), dtype=np.uint8
    )
    buf = io.BytesIO()
    np.savez_compressed(buf, **payload)
    return buf.getvalue()


def read_model_file(
    source: str | os.PathLike[str] | bytes,
    format_name: str,
    format_version: int,
    kind: str,
    *,
    min_version: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """Read and check a model file: ``(arrays, manifest, label)``; ``label`` names it in errors.

    ``source`` is a shipped model's name, a path, or the file's bytes. The manifest must name
    ``format_name`` and a version in ``min_version..format_version``; ``kind`` words the errors
    ("surrogate", "curve").
    """
    if isinstance(source, bytes):
        label, stream = "<bytes>", io.BytesIO(source)
    else:
        path = resolve_model_path(source)
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise ModelFileError(f"{path} is larger than {MAX_MODEL_BYTES} bytes.")
        # Read whole (files are small): a truncated archive then leaves no open file behind.
        label, stream = str(path), io.BytesIO(path.read_bytes())
    try:
        npz = np.load(stream, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a single .npy array
            raise ValueError("a single array, not an .npz archive")
        with npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ModelFileError(f"{label} is not a readable optuna-meta model file: {e}") from e
    if MANIFEST_KEY not in arrays:
        raise ModelFileError(f"{label} has no manifest: not an optuna-meta model file.")
    try:
        manifest = json.loads(arrays.pop(MANIFEST_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{label} has a corrupt manifest: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != format_name:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelFileError(
            f"{label} is not an optuna-meta {kind} model file (format {found!r}; "
            f"expected {format_name!r})."
        )
    version = manifest.get("version")
    if not isinstance(version, int) or version > format_version or version < min_version:
        raise ModelFileError(
            f"{label} has {kind} model format version {version!r}; this optuna-meta reads "
            f"versions {min_version}..{format_version}. "
            + (
                "Re-train the model with this optuna-meta."
                if isinstance(version, int) and version < min_version
                else "Upgrade optuna-meta or re-train the model."
            )
        )
    return arrays, manifest, label


def finite_weights(
    arrays: Mapping[str, np.ndarray], names: Iterable[str], label: str
) -> dict[str, np.ndarray]:
    """The arrays ``names`` as float64, refusing missing or non-finite ones."""
    names = list(names)
    missing = [k for k in names if k not in arrays]
    if missing:
        raise ModelFileError(f"{label} lacks weight arrays {missing}.")
    weights = {k: np.asarray(arrays[k]).astype(np.float64) for k in names}
    if not all(np.all(np.isfinite(w)) for w in weights.values()):
        raise ModelFileError(f"{label} holds non-finite weights.")
    return weights
