"""The job store: SQLAlchemy Core over SQLite (default) or PostgreSQL, migrated on open.

The operations live in one module per noun (jobs, documents, tasks, records, results,
queue); :class:`Store` puts them together over one engine.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..config import default_data_dir
from ..errors import ConfigError, StoreError, reason, translate
from .access import AccessOps, TokenInfo
from .browse import BrowseOps
from .common import LEASE_SECONDS, safe_url, utcnow
from .documents import DocumentOps
from .gauges import GaugeOps
from .jobs import JobInfo, JobOps
from .lifecycle import LifecycleOps
from .queue import QueueOps
from .records import RecordDelta, RecordOps
from .results import ResultOps
from .tasks import TaskOps
from .webhooks import Delivery, WebhookOps

__all__ = [
    "LEASE_SECONDS",
    "Delivery",
    "JobInfo",
    "RecordDelta",
    "Store",
    "TokenInfo",
    "utcnow",
]

# Any fixed 64-bit number, the same in every process: the key of the advisory lock that
# serializes first-time migrations on PostgreSQL.
_MIGRATE_LOCK = 0x6F63726261746368  # "ocrbatch"
# The newest migration. A store already there is opened without Alembic, whose import
# costs a tenth of a second at every command; tests/unit/test_store.py checks that this
# is Alembic's head.
SCHEMA_HEAD = "0007"


class Store(
    JobOps,
    LifecycleOps,
    DocumentOps,
    TaskOps,
    RecordOps,
    ResultOps,
    QueueOps,
    BrowseOps,
    GaugeOps,
    AccessOps,
    WebhookOps,
):
    """A job store at a SQLAlchemy URL; migrates the schema to the latest on open.

    A context manager: ``with Store(url) as st: ...`` closes it at the end.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError(
                f"malformed database URL {url!r} (expected e.g. sqlite:///jobs.db or "
                "postgresql+psycopg://user@host/db)"
            ) from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        self._sqlite_file: Path | None = None
        if self.dialect == "sqlite":
            db = parsed.database
            if not db or db == ":memory:":
                # One shared connection, or every connection would see its own empty DB.
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            else:
                self._sqlite_file = Path(db).expanduser()
                _private_file(self._sqlite_file)
                kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        if self.dialect == "postgresql":
            if parsed.drivername == "postgresql":
                # psycopg 3 is the driver the [postgres] extra installs.
                parsed = parsed.set(drivername="postgresql+psycopg")
            if parsed.drivername == "postgresql+psycopg":
                try:
                    import psycopg  # noqa: F401
                except ImportError:
                    raise ConfigError(
                        "a PostgreSQL store needs psycopg: pip install 'ocrbatch[postgres]'"
                    ) from None
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (NoSuchModuleError, ArgumentError, ImportError) as exc:
            raise ConfigError(f"unsupported database URL {url!r}: {exc}") from None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite's own BEGIN is deferred and issued late; we issue BEGIN ourselves, and
            # BEGIN IMMEDIATE for writes, so a read-then-write (record, claim) is atomic
            # against other processes (SQLAlchemy's documented pysqlite recipe).
            event.listen(self.engine, "begin", _sqlite_begin)
        self._writer = self.engine.execution_options(ocrbatch_write=True)
        try:
            self._migrate()
        except OperationalError as exc:
            raise StoreError(f"cannot open database {safe_url(url)}: {_why(exc)}") from None
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _revision(self) -> str | None:
        """The store's schema revision (None: a new database, or no answer)."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except SQLAlchemyError:  # no such table yet; a real failure recurs in _migrate
            return None
        return None if row is None else str(row[0])

    def _migrate(self) -> None:
        if self._revision() == SCHEMA_HEAD:
            return
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config(str(Path(__file__).with_name("alembic.ini")))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with self.engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
        for attempt in range(3):
            try:
                with self.engine.connect() as conn, _foreign_keys_off(conn), conn.begin():
                    if self.dialect == "postgresql":
                        # Coordinators starting together on a new database: the first
                        # migrates, the others wait here (DDL is transactional on
                        # PostgreSQL) and then find the schema at head.
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
                        if MigrationContext.configure(conn).get_current_revision() == head:
                            return
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                return
            except OperationalError:
                # Two processes creating a new SQLite database at once: the loser retries
                # and finds the schema in place.
                if attempt == 2:
                    raise
                time.sleep(0.2)

    @property
    def display_url(self) -> str:
        """The URL as it may be shown: without its password."""
        return safe_url(self.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def database_files(self) -> list[Path]:
        """The files a SQLite store writes (the database, its WAL, shared-memory and
        journal files), which discovery must never take for inputs; none for a server."""
        db = self._sqlite_file
        if db is None:
            return []
        return [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]

    def _begin(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction (on SQLite it holds the write lock from its start)."""
        return self._guarded(self._writer.begin())

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for reading (on SQLite in WAL mode it never waits for a writer)."""
        return self._guarded(self.engine.connect())

    @contextlib.contextmanager
    def _guarded(self, cm: contextlib.AbstractContextManager[Connection]) -> Iterator[Connection]:
        try:
            with cm as c:
                yield c
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _error(self, exc: SQLAlchemyError) -> StoreError:
        """The store's boundary: a database error is one StoreError line (the URL without
        its password, the driver's own message)."""
        where = safe_url(self.url)
        err = translate(
            exc, {SQLAlchemyError: lambda e: StoreError(f"database error on {where}: {_why(e)}")}
        )
        assert isinstance(err, StoreError)
        return err


@contextlib.contextmanager
def _foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite migrations rebuild tables (Alembic's batch mode: copy, drop, rename); with
    foreign keys on, dropping ``jobs`` would cascade to its documents and tasks. Off for
    the migration (a pragma outside any transaction), on again after."""
    raw = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")


def _private_file(path: Path) -> None:
    """Create a new SQLite store readable by its owner only (folder 0700, file 0600): a
    job keeps its PDF password while it may run. Existing files keep their modes, but
    the default store (~/.local/share/ocrbatch) is made private as well."""
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of database {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror}") from None
    if path.parent == default_data_dir():
        with contextlib.suppress(OSError):
            path.parent.chmod(0o700)
            path.chmod(0o600)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun by _sqlite_begin
    cur = dbapi_conn.cursor()
    # WAL: `ocrbatch status` reads while a run writes; NORMAL sync is crash-safe in WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front; readers (status, exports) stay deferred and,
    # in WAL mode, never wait for a writer.
    immediate = conn.get_execution_options().get("ocrbatch_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _why(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return reason(orig if isinstance(orig, BaseException) else exc)
