"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from tests import _postgres


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for SQLite files: in RAM where possible (each commit is an fsync on disk)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="optuna-meta-test-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_postgres.PostgresServer]:
    """One private PostgreSQL server for the whole run (see ``tests/_postgres.py``)."""
    try:
        server = _postgres.start()
    except _postgres.PostgresUnavailable as e:
        if os.environ.get(_postgres.REQUIRE_ENV) == "1":
            pytest.fail(f"PostgreSQL is required here ({_postgres.REQUIRE_ENV}=1): {e}")
        pytest.skip(f"no PostgreSQL server: {e}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def rdb_url(request: pytest.FixtureRequest, fast_dir: Path) -> str:
    """An empty RDB storage URL: a SQLite file, then a fresh PostgreSQL database.

    SQLite serialises writers; PostgreSQL lets several workers write at once, as users' shared
    studies do.
    """
    if request.param == "sqlite":
        return f"sqlite:///{fast_dir / 'shared.db'}"
    server = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture(autouse=True)
def _optuna_logs_reach_caplog() -> Iterator[None]:
    """optuna-meta logs under Optuna's root logger, which does not propagate by default."""
    optuna.logging.enable_propagation()
    yield
    optuna.logging.disable_propagation()
