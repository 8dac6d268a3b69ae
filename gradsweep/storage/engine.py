"""One database URL → a configured engine whose schema is known to be current.

SQLite runs in WAL mode with a busy timeout, foreign keys on, and write transactions
that begin IMMEDIATE (so concurrent writers queue instead of failing with "database is
locked"). PostgreSQL goes through psycopg 3 with a small pool and pre-ping.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gradsweep.storage.errors import StorageError
from gradsweep.storage.migrations import VERSION_TABLE

DEFAULT_URL = "sqlite:///gradsweep.db"
BUSY_TIMEOUT_MS = 60_000
MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x6772_6164  # concurrent first opens of one database migrate one at a time
# The newest revision in migrations/versions (a test checks it is Alembic's head): opening
# a database already there reads one row and imports no Alembic (a read command's start).
HEAD_REVISION = "0011"


def resolve_url(url: str | None = None) -> str:
    """The argument, else ``$GRADSWEEP_DB``, else ``sqlite:///gradsweep.db``."""
    return url or os.environ.get("GRADSWEEP_DB") or DEFAULT_URL


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise StorageError(f"unsupported database {backend!r} in {url!r}: use sqlite or postgresql")


def _sqlite_engine(url: URL, read_only: bool, create: bool) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:"):
        raise StorageError("an in-memory SQLite database cannot be shared: give a file path")
    path = Path(database)
    if (read_only or not create) and not path.exists():
        raise StorageError(
            f"no database at {path}: launch a study there, or create it with `gradsweep db upgrade`"
        )
    if not read_only and not path.parent.exists():
        raise StorageError(f"cannot create {path}: folder {path.parent} does not exist")

    def connect() -> sqlite3.Connection:
        target = f"file:{path}?mode=ro" if read_only else str(path)
        conn = sqlite3.connect(
            target, uri=read_only, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        conn.isolation_level = None  # transactions are begun explicitly below
        return conn

    # The real URL, so that engine.url names the file (Optuna's storage is opened from it).
    engine = create_engine(url, creator=connect)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL, read_only: bool) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if read_only:
        connect_args["options"] = "-c default_transaction_read_only=on"
    return create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def alembic_config(connection: Any) -> Any:
    from alembic.config import Config  # only to migrate: a current schema needs none of it

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def _is_current(engine: Engine) -> bool:
    """Whether the schema is at HEAD_REVISION, read with one query (no Alembic)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return versions == [HEAD_REVISION]


def check_schema(engine: Engine, upgrade: bool) -> None:
    """Upgrade an older schema (or refuse a newer one) before anything reads or writes."""
    if _is_current(engine):
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    known = {
        rev.revision for rev in ScriptDirectory.from_config(alembic_config(None)).walk_revisions()
    }
    if current is not None and current not in known:
        raise StorageError(
            f"database schema revision {current} is newer than this gradsweep "
            f"(knows up to {head}); upgrade gradsweep"
        )
    if not upgrade:
        raise StorageError(
            f"database schema is at revision {current or 'none'}, this gradsweep needs {head}: "
            "run `gradsweep db upgrade`"
        )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE serialises already
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), "head")


def open_engine(
    url: str | None = None, *, read_only: bool = False, upgrade: bool = True, create: bool = True
) -> Engine:
    """An engine on ``url`` (see resolve_url) whose schema is current; errors are one line.

    An older schema is upgraded first (``upgrade``), also for a read-only engine, through
    a short-lived writable one: every command opens an older database the same way.
    ``create=False``: a SQLite file that does not exist is an error, not a new database
    (a mistyped path in a read command must not leave an empty database behind).
    """
    text = resolve_url(url)
    parsed = parse_url(text)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, read_only, create)
    else:
        engine = _postgres_engine(parsed, read_only)
    try:
        if not _is_current(engine):
            if read_only and upgrade:  # migrated through a short-lived writable engine
                open_engine(text, upgrade=True, create=False).dispose()
            check_schema(engine, upgrade=upgrade and not read_only)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StorageError(f"cannot open database {safe_url(text)}: {reason}") from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StorageError(f"cannot open database {safe_url(text)}: {exc}") from None
    return engine


def upgrade_database(url: str | None = None) -> str:
    """``gradsweep db upgrade``: create or migrate the schema; returns the revision."""
    engine = open_engine(url, upgrade=True)
    engine.dispose()
    return head_revision()


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = sessionmaker(engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
