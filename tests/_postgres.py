"""A throw-away PostgreSQL server for the tests that run several workers on one RDB study.

Why: SQLite serialises every write behind one file lock, so a test on SQLite cannot show what
happens when workers really write concurrently, which is how users run multi-process studies
(``optuna.load_study(..., storage="postgresql://...")`` on many machines). PostgreSQL's own
binaries (``initdb``, ``pg_ctl``) start a private server in a temporary folder, listening on a
Unix socket only, so nothing outside the test sees it.

Where the server comes from, in order:

1. ``OPTUNA_META_TEST_POSTGRES_URL``: an existing server (a SQLAlchemy URL of a database whose
   user may ``CREATE DATABASE``); each test gets its own new database there.
2. ``initdb`` / ``pg_ctl`` on ``PATH`` or under ``/usr/lib/postgresql/*/bin``: a private server.

With neither (or no ``psycopg2``), the PostgreSQL tests are skipped, unless
``OPTUNA_META_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it), which turns the skip into a failure
so that CI can never pass without having run them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

URL_ENV = "OPTUNA_META_TEST_POSTGRES_URL"
REQUIRE_ENV = "OPTUNA_META_REQUIRE_POSTGRES"
SERVER_USER = "postgres"
"""``initdb`` refuses to run as root; as root the server runs as this system user."""

_START_TIMEOUT_S = 60
_counter = itertools.count()


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be had here (the reason is the message)."""


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A running server: :meth:`new_database` hands out a fresh database's URL.

    Use :func:`start` to get one; :meth:`stop` ends a private server and removes its folder.
    """

    def __init__(self, admin_url: str, folder: Path | None, pg_ctl: str | None, user: str | None):
        self.admin_url = admin_url
        self.folder = folder
        self._pg_ctl = pg_ctl
        self._user = user

    def new_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url)
        name = f"optuna_meta_test_{os.getpid()}_{next(_counter)}"
        conn = psycopg2.connect(
            dbname=url.database,
            user=url.username,
            password=url.password,
            host=url.host or url.query.get("host"),
            port=url.port,
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return url.set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self.folder is None or self._pg_ctl is None:
            return
        subprocess.run(
            [self._pg_ctl, "-D", str(self.folder / "data"), "-m", "immediate", "stop"],
            user=self._user,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> PostgresServer:
    """An existing server from :data:`URL_ENV`, else a private one; raises
    :class:`PostgresUnavailable` with the reason when neither can be had."""
    try:
        import psycopg2  # noqa: F401
    except ImportError as e:
        raise PostgresUnavailable("psycopg2 is not installed") from e
    if os.environ.get(URL_ENV):
        return PostgresServer(os.environ[URL_ENV], None, None, None)
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise PostgresUnavailable("PostgreSQL's initdb/pg_ctl were not found")
    user = None
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError as e:
            raise PostgresUnavailable(f"running as root and no {SERVER_USER!r} user") from e
        user = SERVER_USER
    folder = Path(tempfile.mkdtemp(prefix="optuna-meta-pg-"))
    try:
        if user is not None:
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        data = folder / "data"
        subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            user=user,
            capture_output=True,
            text=True,
            check=True,
            timeout=_START_TIMEOUT_S,
        )
        # Unix socket only (no TCP port to collide with); durability off: a test server.
        options = (
            f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        log, wait = str(folder / "server.log"), str(_START_TIMEOUT_S)
        subprocess.run(
            [pg_ctl, "-D", str(data), "-l", log, "-o", options, "-w", "-t", wait, "start"],
            user=user,
            capture_output=True,
            text=True,
            check=True,
            timeout=_START_TIMEOUT_S + 10,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        log_file = folder / "server.log"
        detail = log_file.read_text()[-2000:] if log_file.exists() else ""
        stderr = getattr(e, "stderr", "") or ""
        PostgresServer("", folder, pg_ctl, user).stop()  # a half-started server, if any
        raise PostgresUnavailable(
            f"the private server did not start: {e}\n{stderr}{detail}"
        ) from e
    admin = f"postgresql+psycopg2://postgres@/postgres?host={folder}"
    return PostgresServer(admin, folder, pg_ctl, user)
