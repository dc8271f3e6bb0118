"""Read past studies from an Optuna storage as a meta-dataset, and write one back.

:func:`load_from_storage` turns every single-objective study of a storage into a
:class:`~optuna_meta.data.TaskData`; :func:`export_to_storage` does the reverse, so that a
meta-dataset (YAHPO samples included) can be browsed in optuna-dashboard.

Storage arguments accept what Optuna accepts plus file paths, for convenience:

* any :class:`~optuna.storages.BaseStorage` object (RDB, journal, in-memory, gRPC proxy);
* a database URL (``"sqlite:///past.db"``, ``"postgresql://..."``, ...);
* a path (``str`` without ``"://"`` or :class:`os.PathLike`) ending in ``.log``, ``.journal`` or
  ``.jsonl``: a journal file (:class:`~optuna.storages.journal.JournalFileBackend`);
* a path ending in ``.db``, ``.sqlite`` or ``.sqlite3``: a SQLite file.

Reading conventions (:func:`load_from_storage`):

* Studies: one task per single-objective study, named after the study; multi-objective studies
  are skipped with a warning, as are studies without any usable trial.
* Trials: COMPLETE and PRUNED (the latter unless ``include_pruned=False``), ordered by number;
  FAIL, RUNNING and WAITING trials are left out. A PRUNED trial's value is NaN (Optuna stores its
  last intermediate value, which stays in the curve). Infinite values and intermediate values are
  kept as they are. A NaN intermediate value reads as "not reported" (NaN in ``curves``, and a
  step where every trial reported NaN is not in ``steps``), so export -> load is lossless.
* Constraints (``trial.set_constraint``, a sampler's ``constraints_func``): ``feasible`` per
  trial, True when every constraint value is 0 or less (a trial without values counts as
  feasible); None for a study without constraints. Export writes them back as one constraint,
  ``feasible``, of 0 or 1.
* Objective name: the study's metric name (:meth:`optuna.study.Study.set_metric_names`), else
  ``"value"``.
* Meta-features: if the study has a user attr ``"optuna_meta:meta_features"`` holding a dict,
  its number and string entries; otherwise every study user attr whose value is a number
  (bools become 0.0/1.0) or a string. Other values (lists, dicts, None) are ignored.
* Search space: the union of the trials' distributions. When trials disagree on a parameter,
  distributions of the same kind and ``log`` are widened (``low``/``high`` to the extremes; a
  ``step`` kept when both grids agree, else none; categorical choices to their union, in order
  of first appearance); otherwise the latest trial's distribution wins, a warning is issued,
  and the parameter is dropped from the trials whose value does not fit it.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from optuna_meta.data._dataset import MetaDataset, TaskData
from optuna_meta.space._projection import grids_align

META_FEATURES_KEY = "optuna_meta:meta_features"
"""Study user attr that, when it holds a dict, is the task's meta-features (see module doc)."""

_JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_JOURNAL_PEEK_BYTES = 1 << 20
"""How much of a journal file's first line is read to check it is one (a record is short)."""
_METRIC_NAMES_KEY = "study:metric_names"  # Optuna's system attr behind Study.metric_names


def _resolve_storage(
    storage: str | os.PathLike[str] | BaseStorage, *, create: bool
) -> tuple[BaseStorage, bool]:
    """The storage object, and whether this module created it (and must dispose of it)."""
    if isinstance(storage, BaseStorage):
        return storage, False
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(
            f"storage must be a URL, a file path or a BaseStorage, got {type(storage).__name__}."
        )
    text = os.fspath(storage)
    if isinstance(storage, str) and "://" in text:
        if not create:
            _require_sqlite_file(text)
        else:
            path = sqlite_file(text)
            if path is not None and path.is_file() and path.stat().st_size > 0:
                _require_optuna_tables(path)
        return _rdb(text), True
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if suffix not in _JOURNAL_SUFFIXES + _SQLITE_SUFFIXES:
        raise ValueError(
            f"Cannot tell the storage type of {text!r}: pass a database URL (e.g. "
            f"'sqlite:///x.db'), a journal file ending in {_JOURNAL_SUFFIXES}, a SQLite file "
            f"ending in {_SQLITE_SUFFIXES}, or a BaseStorage object."
        )
    if not create and not path.exists():
        raise FileNotFoundError(f"No storage file at {path}.")
    if suffix in _JOURNAL_SUFFIXES:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        _require_journal(path)
        return JournalStorage(JournalFileBackend(str(path))), True
    if not create or (path.is_file() and path.stat().st_size > 0):
        _require_optuna_tables(path)  # an export into another program's database too
    return _rdb(f"sqlite:///{path}"), True


def _rdb(url: str) -> RDBStorage:
    """``RDBStorage(url)``; a database of an older Optuna schema is a clear ValueError."""
    try:
        return RDBStorage(url)
    except RuntimeError as e:  # Optuna's schema check: it names `optuna storage upgrade`
        raise ValueError(f"Cannot read {url}: {e}") from e


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL names (``sqlite:///x.db``, ``sqlite+pysqlite:///x.db``,
    ``sqlite:///file:x.db?mode=ro&uri=true``); None for another database or an in-memory one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # not a URL SQLAlchemy reads: RDBStorage says why
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    database = parsed.database
    if str(parsed.query.get("uri", "")).lower() == "true" and database.startswith("file:"):
        from urllib.parse import unquote, urlparse

        database = unquote(urlparse(database).path)  # file:x.db, file:///x, file://localhost/x
    if database == ":memory:" or database.startswith(":memory:"):
        return None
    return Path(database)


def _require_sqlite_file(url: str) -> None:
    """Reading a SQLite URL whose file does not exist is a typo: SQLAlchemy would create an
    empty database there and the caller would read no study."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"No SQLite database at {path} (from {url!r}).")
    if path is not None:
        _require_optuna_tables(path)


def _require_optuna_tables(path: Path) -> None:
    """Refuse to read a SQLite file that holds no Optuna storage.

    Why: ``RDBStorage`` creates its tables in any database it opens, so a path to another
    program's database (a typo) would get Optuna's tables written into it, while this module
    promises to leave what it reads untouched. The file is opened read-only here.
    """
    import sqlite3

    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            con.close()
    except sqlite3.Error as e:
        raise ValueError(f"{path} is not a readable SQLite database ({e}).") from e
    tables = {r[0] for r in rows}
    if not {"studies", "trials", "alembic_version"} <= tables:
        raise ValueError(
            f"{path} is not an Optuna storage (it has no Optuna tables); it was not changed."
        )
    missing = _optuna_tables() - tables
    if missing:
        # An older Optuna's schema: ``RDBStorage`` would create the missing tables before its
        # version check refuses the file, so the file would change although it is only read.
        raise ValueError(
            f"{path} was written by an older Optuna (it lacks the tables "
            f"{', '.join(sorted(missing))}); upgrade a copy with `optuna storage upgrade "
            f"--storage sqlite:///<copy>` and read that. The file was not changed."
        )


def _optuna_tables() -> set[str]:
    """The tables of this Optuna's RDB schema (empty if its private module moved)."""
    try:
        from optuna.storages._rdb import models
    except ImportError:  # pragma: no cover - a future Optuna
        return set()
    return set(models.BaseModel.metadata.tables)


def _require_journal(path: Path) -> None:
    """Refuse a file that is not empty and does not start with a journal record.

    Why: any ``.log`` file is taken for a journal by its name. Exporting into a training
    log appended journal records to it and then failed inside Optuna, and reading one gave
    messages such as ``'op_code'``.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        first = f.readline(_JOURNAL_PEEK_BYTES)
    try:
        record = json.loads(first)
    except ValueError:  # not JSON, or not UTF-8
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise ValueError(
            f"{path} is not an Optuna journal file (its first line is not a journal record); "
            "it was not changed."
        )


def _dispose(storage: BaseStorage) -> None:
    if isinstance(storage, RDBStorage):
        storage.engine.dispose()


# -- reading ---------------------------------------------------------------------------------
def load_from_storage(
    storage: str | os.PathLike[str] | BaseStorage,
    study_names: Sequence[str] | None = None,
    *,
    include_pruned: bool = True,
) -> MetaDataset:
    """Read studies of ``storage`` as a :class:`MetaDataset` (one task per study).

    Args:
        storage: A storage object, a database URL, or a journal/SQLite file path (module doc).
        study_names: The studies to read, in this order; default: all, in storage order. A name
            that is not in the storage raises ValueError.
        include_pruned: Also read PRUNED trials (their learning curves are what pruners learn
            from).

    The conventions (meta-features, conflicting distributions, inf/NaN) are in the module doc.
    """
    if isinstance(study_names, str):
        raise TypeError(
            f"study_names must be a sequence of study names, got the str {study_names!r}: "
            f"pass [{study_names!r}] for one study."
        )
    if study_names is not None and len(study_names) == 0:
        raise ValueError("study_names is empty: pass None to read every study.")
    backend, owned = _resolve_storage(storage, create=False)
    try:
        studies = backend.get_all_studies()
        if study_names is not None:
            by_name = {s.study_name: s for s in studies}
            missing = [n for n in study_names if n not in by_name]
            if missing:
                raise ValueError(f"Studies {missing} are not in the storage.")
            studies = [by_name[n] for n in study_names]
        states = (
            (TrialState.COMPLETE, TrialState.PRUNED) if include_pruned else (TrialState.COMPLETE,)
        )
        tasks = []
        for study in studies:
            if len(study.directions) != 1:
                warnings.warn(
                    f"Skipped multi-objective study {study.study_name!r}: meta-datasets hold "
                    "single-objective tasks.",
                    stacklevel=2,
                )
                continue
            study_id = backend.get_study_id_from_name(study.study_name)
            trials = backend.get_all_trials(study_id, deepcopy=False, states=states)
            trials = sorted(
                (t for t in trials if t.state != TrialState.COMPLETE or _has_value(t)),
                key=lambda t: t.number,
            )
            if not trials:
                warnings.warn(
                    f"Skipped study {study.study_name!r}: no COMPLETE"
                    f"{' or PRUNED' if include_pruned else ''} trial.",
                    stacklevel=2,
                )
                continue
            metric_names = study.system_attrs.get(_METRIC_NAMES_KEY)
            objective = (
                str(metric_names[0])
                if isinstance(metric_names, list) and metric_names and metric_names[0]
                else "value"
            )
            tasks.append(
                _task_from_trials(
                    study.study_name,
                    trials,
                    direction=study.directions[0],
                    meta_features=_meta_features(study.user_attrs),
                    objective=objective,
                )
            )
    finally:
        if owned:
            _dispose(backend)
    return MetaDataset(tasks)


def _has_value(trial: FrozenTrial) -> bool:
    return trial.values is not None and len(trial.values) == 1 and not math.isnan(trial.values[0])


def _meta_features(user_attrs: dict[str, Any]) -> dict[str, float | str]:
    source = user_attrs.get(META_FEATURES_KEY)
    if not isinstance(source, dict):
        source = user_attrs
    out: dict[str, float | str] = {}
    for key, value in source.items():
        if isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, (int, float)):
            out[str(key)] = float(value)
    return out


def _widen(a: BaseDistribution, b: BaseDistribution) -> BaseDistribution | None:
    """The smallest distribution covering ``a`` and ``b``, or None when they are incompatible."""
    if a == b:
        return a
    if isinstance(a, CategoricalDistribution) and isinstance(b, CategoricalDistribution):
        extra = tuple(c for c in b.choices if c not in a.choices)
        return CategoricalDistribution(a.choices + extra)
    if type(a) is type(b) and isinstance(a, (FloatDistribution, IntDistribution)):
        assert isinstance(b, (FloatDistribution, IntDistribution))
        if a.log != b.log:
            return None
        low, high, step = min(a.low, b.low), max(a.high, b.high), a.step
        if step is not None and not grids_align(a, b):
            # Two steps, or two grids that do not align (32, 64, ... and 16, 48, ...): no
            # grid holds both sets of values, and one set would fall outside the merged
            # distribution (dropped from its trials, or a failed export).
            step = 1 if isinstance(a, IntDistribution) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a step grid may shift `high`
            return type(a)(low, high, log=a.log, step=step)
    return None


def _fits(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _merged_space(
    study_name: str, trials: Sequence[FrozenTrial]
) -> tuple[dict[str, BaseDistribution], set[str]]:
    space: dict[str, BaseDistribution] = {}
    conflicted: set[str] = set()
    for trial in trials:
        for name, dist in trial.distributions.items():
            old = space.get(name)
            if old is None:
                space[name] = dist
                continue
            if old is dist or old == dist:
                continue
            merged = _widen(old, dist)
            if merged is None:
                conflicted.add(name)
                merged = dist
            space[name] = merged
    return space, conflicted


def _task_from_trials(
    name: str,
    trials: Sequence[FrozenTrial],
    *,
    direction: optuna.study.StudyDirection,
    meta_features: dict[str, float | str],
    objective: str,
) -> TaskData:
    space, conflicted = _merged_space(name, trials)
    params = [dict(t.params) for t in trials]
    for pname in conflicted:
        dist = space[pname]
        dropped = 0
        for p in params:
            if pname not in p:
                continue
            if _fits(dist, p[pname]):
                p[pname] = dist.to_external_repr(dist.to_internal_repr(p[pname]))
            else:
                del p[pname]
                dropped += 1
        warnings.warn(
            f"Study {name!r}: parameter {pname!r} has incompatible distributions across trials; "
            f"kept the latest ({dist}) and dropped it from {dropped} trial(s) it does not fit.",
            stacklevel=3,
        )
    n = len(trials)
    complete = np.array([t.state == TrialState.COMPLETE for t in trials], dtype=bool)
    values = np.full(n, np.nan)
    values[complete] = [t.values[0] for t, c in zip(trials, complete, strict=True) if c]
    reported = [{s: v for s, v in t.intermediate_values.items() if v == v} for t in trials]
    steps = np.array(sorted(set().union(*reported)), dtype=np.int64)
    col = {int(s): j for j, s in enumerate(steps.tolist())}
    curves = np.full((n, len(steps)), np.nan)
    for i, inter in enumerate(reported):
        for s, v in inter.items():
            curves[i, col[s]] = v
    constraints = [t.constraints for t in trials]
    feasible = None
    if any(constraints):  # trials without constraint values (failed ones) count as feasible
        feasible = np.array(
            [all(float(c) <= 0.0 for c in cs.values()) for cs in constraints], dtype=bool
        )  # NaN is infeasible, as Optuna's own check has it
    return TaskData(
        name=name,
        search_space=space,
        params=params,
        values=values,
        states=np.array([t.state.value for t in trials], dtype=np.int8),
        steps=steps,
        curves=curves,
        direction=direction,
        meta_features=meta_features,
        objective=objective,
        feasible=feasible,
    )


# -- writing ---------------------------------------------------------------------------------
def export_to_storage(
    dataset: MetaDataset,
    storage: str | os.PathLike[str] | BaseStorage,
    *,
    prefix: str = "",
    overwrite: bool = False,
) -> list[str]:
    """Write each task of ``dataset`` as a study named ``prefix + task.name``; return the names.

    A study gets the task's direction, its objective as metric name (unless ``"value"``), one
    user attr per meta-feature, and one trial per row (``optuna.trial.create_trial``) with its
    state, value, parameters and intermediate values (NaN entries of the curve are not written;
    a PRUNED trial gets its last reported value as its value, as Optuna does; a task with
    ``feasible`` gets one constraint, 0 or 1). Loading the result
    with :func:`load_from_storage` gives the dataset back, but for tasks without trials and
    for FAIL rows, which loading leaves out.

    Writing is as fast as the storage's ``add_trial``: a journal file takes a few ms per trial,
    an RDB storage ~0.1 s per trial with a 52-step curve (one row per intermediate value).

    If a study of that name exists, :class:`optuna.exceptions.DuplicatedStudyError` is raised
    before anything is written, unless ``overwrite=True``: then it is deleted and recreated.
    File paths that do not exist yet are created.
    """
    backend, owned = _resolve_storage(storage, create=True)
    try:
        names = [prefix + task.name for task in dataset]
        existing = {s.study_name for s in backend.get_all_studies()}
        clash = [n for n in names if n in existing]
        if clash and not overwrite:
            raise DuplicatedStudyError(
                f"Studies {clash} already exist in the storage; pass overwrite=True "
                "(optuna-meta export: --overwrite) to replace them, or choose another prefix."
            )
        # Every trial is built (and checked by Optuna) before anything is written or deleted:
        # a value outside its distribution once failed half-way, after `overwrite` had
        # deleted the study it was to replace.
        prepared = [_frozen_trials(task) for task in dataset]
        for task, study_name, trials in zip(dataset, names, prepared, strict=True):
            if study_name in existing:
                optuna.delete_study(study_name=study_name, storage=backend)
            study = optuna.create_study(
                study_name=study_name, storage=backend, direction=task.direction
            )
            for key, value in task.meta_features.items():
                study.set_user_attr(key, value)
            if task.objective != "value":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names([task.objective])
            study.add_trials(trials)
    finally:
        if owned:
            _dispose(backend)
    return names


def _frozen_trials(task: TaskData) -> list[FrozenTrial]:
    out = []
    final = task.final_values(use_curves=True)
    for rec in task.trials():
        if rec.state == TrialState.COMPLETE:
            value: float | None = rec.value
        elif rec.state == TrialState.PRUNED and not math.isnan(final[rec.index]):
            value = float(final[rec.index])
        else:
            value = None
        out.append(
            optuna.trial.create_trial(
                state=rec.state,
                value=value,
                params=rec.params,
                distributions={k: task.search_space[k] for k in rec.params},
                intermediate_values=rec.intermediate_values,
                # the dataset keeps feasibility, not the constraint values: 0 or 1 restores it
                constraints=(
                    None
                    if task.feasible is None
                    else {"feasible": 0.0 if task.feasible[rec.index] else 1.0}
                ),
            )
        )
    return out
