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

MAX_UNPACKED_BYTES = 4 * MAX_MODEL_BYTES
"""Refuse model files whose arrays unpack to more than this. Why: an npz is a zip archive, and
a small compressed file can unpack to gigabytes (a 0.5 MB file whose manifest was padded with
500 MB of spaces took 2 GB of memory to load); the limit on the file's size does not bound it."""

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


def shipped_models(format_name: str | None = None) -> list[str]:
    """Names of the models shipped inside the package (of ``format_name`` only, if given)."""
    names = sorted(p.stem for p in MODELS_DIR.glob("*.npz"))
    if format_name is None:
        return names
    return [n for n in names if _manifest_format(MODELS_DIR / f"{n}.npz") == format_name]


def _manifest_format(path: Path) -> str | None:
    """The ``format`` a model file's manifest names (None if it names none or cannot be read)."""
    try:
        manifest = _read_manifest_only(path)
    except ModelFileError:
        return None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    return found if isinstance(found, str) else None


def resolve_model_path(
    name_or_path: str | os.PathLike[str], format_name: str | None = None
) -> Path:
    """A shipped model's name or a file path -> an existing file path (or ModelFileError).

    ``format_name`` narrows the shipped models the error message offers to that kind.
    """
    if not str(name_or_path).strip():  # Path("") is the current folder
        raise ModelFileError(
            f"No model given (an empty name): pass a path to a .npz model file or one of the "
            f"shipped models {shipped_models(format_name)}."
        )
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    if isinstance(name_or_path, str) and os.sep not in name_or_path:
        shipped = MODELS_DIR / f"{name_or_path.removesuffix('.npz')}.npz"
        if shipped.is_file():
            return shipped
    if candidate.is_dir():
        raise ModelFileError(f"{str(name_or_path)!r} is a folder, not a model file.")
    raise ModelFileError(
        f"No model file {str(name_or_path)!r}: pass a path to a .npz model file or one of the "
        f"shipped models {shipped_models(format_name)}."
    )


def check_model_source(
    source: str | os.PathLike[str],
    format_name: str,
    format_version: int,
    kind: str,
    *,
    min_version: int = 1,
) -> str:
    """Fail fast on a model argument that cannot work: no such file or name, not a model file,
    a model of another kind (a surrogate given to MetaPruner), or one of a format version this
    optuna-meta does not read.

    Why: the sampler and the pruner load their model lazily, and a model that fails to load
    then sends the whole study to the fallback with one warning, so that a study is never
    failed by its model. A typo in a path would then cost a whole study's worth of compute
    before anyone read the log. This check reads only the file's manifest, so constructing a
    sampler stays cheap; the full checks still run when the model is loaded.

    Returns:
        The file's absolute path: the sampler and the pruner load from it when it still
        exists, so a relative path keeps working after the process changes its directory.

    Raises:
        ModelFileError: With the reason.
    """
    path = resolve_model_path(source, format_name)
    manifest = _read_manifest_only(path)
    _check_manifest(manifest, str(path), format_name, format_version, kind, min_version)
    return str(path.resolve())


def model_source(given: str | os.PathLike[str], checked: str | None) -> str | os.PathLike[str]:
    """What to load: the path checked at construction if it still exists, else the argument
    (a pickled sampler in another process or machine, where only the argument may resolve)."""
    return checked if checked is not None and os.path.isfile(checked) else given


def _read_manifest_only(path: Path) -> Any:
    """The parsed manifest of the model file at ``path``, read without its weight arrays."""
    _check_file_size(path)
    try:
        with zipfile.ZipFile(path) as archive:
            _check_unpacked_size(archive, str(path))
            raw = archive.read(f"{MANIFEST_KEY}.npy")
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except KeyError:
        raise ModelFileError(f"{path} has no manifest: not an optuna-meta model file.") from None
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ModelFileError(_not_readable(str(path), e)) from e
    return _parse_manifest(array, str(path))


def _check_file_size(path: Path) -> None:
    """Refuse a file larger than :data:`MAX_MODEL_BYTES` (at construction too: a sampler whose
    model fails only at its first trial sends the whole study to the fallback)."""
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path} is {size} bytes, larger than the {MAX_MODEL_BYTES} a model file may be: "
            "not an optuna-meta model file."
        )


def _check_unpacked_size(archive: zipfile.ZipFile, label: str) -> None:
    """Refuse an archive whose members unpack to more than :data:`MAX_UNPACKED_BYTES`."""
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_UNPACKED_BYTES:
        raise ModelFileError(
            f"{label} unpacks to {unpacked} bytes, more than the {MAX_UNPACKED_BYTES} a model "
            "file may hold: not an optuna-meta model file."
        )


def _not_readable(label: str, error: Exception) -> str:
    if isinstance(error, zipfile.BadZipFile):
        return f"{label} is not a readable optuna-meta model file: not an .npz archive."
    return f"{label} is not a readable optuna-meta model file: {error}"


def _parse_manifest(array: np.ndarray, label: str) -> Any:
    try:
        return json.loads(np.asarray(array).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{label} has a corrupt manifest: {e}") from e


def _check_manifest(
    manifest: Any,
    label: str,
    format_name: str,
    format_version: int,
    kind: str,
    min_version: int,
) -> None:
    """The manifest must name ``format_name`` and a version this optuna-meta reads."""
    if not isinstance(manifest, dict) or manifest.get("format") != format_name:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        hint = _OTHER_KIND_HINTS.get(found, "") if isinstance(found, str) else ""
        raise ModelFileError(
            f"{label} is not an optuna-meta {kind} model file (format {found!r}; "
            f"expected {format_name!r}).{hint}"
        )
    version = manifest.get("version")
    too_old = isinstance(version, int) and version < min_version
    if not isinstance(version, int) or version > format_version or too_old:
        raise ModelFileError(
            f"{label} has {kind} model format version {version!r}; this optuna-meta reads "
            f"versions {min_version}..{format_version}. "
            + (
                "Re-train the model with this optuna-meta."
                if too_old
                else "Upgrade optuna-meta or re-train the model."
            )
        )


_OTHER_KIND_HINTS = {
    "optuna-meta/surrogate": " It is a MetaSampler surrogate: pass it to MetaSampler(model=...).",
    "optuna-meta/curve": " It is a MetaPruner curve model: pass it to MetaPruner(model=...).",
    "optuna-meta/meta-dataset": " It is a meta-dataset: `optuna-meta train --dataset` reads it.",
}
"""What a file of another known format is for, added to a wrong-kind error."""


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
        path = resolve_model_path(source, format_name)
        _check_file_size(path)
        # Read whole (files are small): a truncated archive then leaves no open file behind.
        label, stream = str(path), io.BytesIO(path.read_bytes())
    if not zipfile.is_zipfile(stream):  # numpy would talk of pickles for a text file
        raise ModelFileError(_not_readable(label, zipfile.BadZipFile()))
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            _check_unpacked_size(archive, label)
    except zipfile.BadZipFile as e:
        raise ModelFileError(_not_readable(label, e)) from e
    stream.seek(0)
    try:
        npz = np.load(stream, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a single .npy array
            raise ValueError("a single array, not an .npz archive")
        with npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ModelFileError(_not_readable(label, e)) from e
    if MANIFEST_KEY not in arrays:
        raise ModelFileError(f"{label} has no manifest: not an optuna-meta model file.")
    manifest = _parse_manifest(arrays.pop(MANIFEST_KEY), label)
    _check_manifest(manifest, label, format_name, format_version, kind, min_version)
    return arrays, manifest, label


def finite_weights(
    arrays: Mapping[str, np.ndarray], names: Iterable[str], label: str
) -> dict[str, np.ndarray]:
    """The arrays ``names`` as float64, refusing missing or non-finite ones."""
    names = list(names)
    missing = [k for k in names if k not in arrays]
    if missing:
        raise ModelFileError(f"{label} lacks weight arrays {missing}.")
    # Real numbers only: a cast would read digit strings and drop imaginary parts silently.
    foreign = {k: str(np.asarray(arrays[k]).dtype) for k in names}
    foreign = {k: t for k, t in foreign.items() if np.dtype(t).kind not in "fiu"}
    if foreign:
        raise ModelFileError(f"{label} holds weight arrays that are not real numbers: {foreign}.")
    weights = {k: np.asarray(arrays[k]).astype(np.float64) for k in names}
    if not all(np.all(np.isfinite(w)) for w in weights.values()):
        raise ModelFileError(f"{label} holds non-finite weights.")
    return weights
