"""One database URL → a configured engine whose schema is known to be current.

SQLite runs in WAL mode with a busy timeout, foreign keys on, and write transactions
that begin IMMEDIATE (so concurrent writers queue instead of failing with "database is
locked"). PostgreSQL goes through psycopg 3 with a small pool and pre-ping.

A database is opened exactly as named: a SQLite path reaches sqlite3 as a percent-encoded
``file:`` URI (a ``#``, ``?`` or ``%`` in it is part of the name, never a URI's fragment or
query) in the mode asked for: ``ro`` for the read commands (never created, never written),
``rw`` for the other commands (never created), ``rwc`` for ``launch`` and ``db upgrade``
alone. Only those two create gradsweep's schema; any other open of a database without it
is refused in one line and changes nothing (not even SQLite's journal mode).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gradsweep.storage.errors import StorageError, reason
from gradsweep.storage.migrations import VERSION_TABLE

DEFAULT_URL = "sqlite:///gradsweep.db"
BUSY_TIMEOUT_MS = 60_000
MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x6772_6164  # concurrent first opens of one database migrate one at a time
# The newest revision in migrations/versions (a test checks it is Alembic's head): opening
# a database already there reads one row and imports no Alembic (a read command's start).
HEAD_REVISION = "0013"
STUDIES_TABLE = "gs_studies"
# The drivers gradsweep is built and tested with; any other is refused, never swapped.
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
POSTGRES_DRIVERS = ("postgresql", "postgresql+psycopg")

Note = Callable[[str], None]
"""Where a remark about how a database was opened goes (the CLI: ``note: …`` on stderr;
without one, this module's logger)."""
log = logging.getLogger(__name__)


# A URL's scheme (``sqlite``, ``postgresql+psycopg``), RFC 3986's letters
SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*"
URL_FORM = re.compile(rf"{SCHEME}://")
# a scheme without its ``//`` (``sqlite:/x``, ``mysql:``) or without its ``:``
# (``postgres//host/db``): a URL mistyped, never taken for a file's path
MISTYPED_URL = re.compile(rf"{SCHEME}(:|//)")
PASSWORD = re.compile(r"([^:/@]+:)[^@/]*@")  # user:password@ in a URL make_url cannot read
URL_HINT = (
    "a SQLite file: path/to/file.db or sqlite:///path/to/file.db; "
    "PostgreSQL: postgresql://user@host/db"
)


def resolve_url(url: str | None = None) -> str:
    """The argument, else ``$GRADSWEEP_DB``, else ``sqlite:///gradsweep.db``, as a URL
    (``database_url``: a path names a SQLite file)."""
    return database_url(url or os.environ.get("GRADSWEEP_DB") or DEFAULT_URL)


def database_url(value: str) -> str:
    """``--db``'s value as a URL: a URL as it is; a path (``cancer.db``, ``./x/y.sqlite``,
    ``~/studies.db``) as the URL naming that SQLite file, made absolute with ``~``
    expanded, every character of its name its own (``sqlite_url``). A value that looks
    like a mistyped URL (a scheme without ``//`` or without ``:``) is refused in one
    line: taken for a path, it would name a file nobody meant."""
    if URL_FORM.match(value):
        return value
    if MISTYPED_URL.match(value):
        raise StorageError(f"not a database URL or path: {safe_url(value)!r} ({URL_HINT})")
    return sqlite_url(os.path.abspath(os.path.expanduser(value)))


def sqlite_url(path: str | Path) -> str:
    """The URL naming exactly this file: its ``%``, ``?``, ``#`` and spaces percent-encoded
    (``a?b.db`` → ``sqlite:///a%3Fb.db``), as parse_url decodes them."""
    return "sqlite:///" + quote(str(path), safe="/")


def parse_url(url: str) -> URL:
    """The URL with its driver checked: psycopg 3 for PostgreSQL, sqlite3 for SQLite. Any
    other driver is refused (silently using another would not be the database asked for)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"not a database URL: {safe_url(url)!r} ({URL_HINT})") from None
    driver = parsed.drivername
    if driver in POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if driver in SQLITE_DRIVERS:
        _check_sqlite_url(url, parsed)
        return parsed.set(drivername="sqlite")
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "sqlite"):
        use = "postgresql:// (psycopg 3)" if backend == "postgresql" else "sqlite:///PATH"
        raise StorageError(
            f"unsupported driver {driver!r} in {safe_url(url)}: gradsweep uses only {use}"
        )
    raise StorageError(
        f"unsupported database {backend!r} in {safe_url(url)}: use sqlite or postgresql"
    )


def _check_sqlite_url(url: str, parsed: URL) -> None:
    """A ``?`` starts a URL's query, which SQLAlchemy would drop without a word (and with it
    the rest of a file name): refused, with the spelling that names the file."""
    after_scheme = url.split("://", 1)[-1]
    if "?" in after_scheme or parsed.query:
        raise StorageError(
            f"{url}: a '?' in a SQLite URL starts a query, and gradsweep takes none; "
            f"a file name holding '?' is written %3F: {url.replace('?', '%3F')}"
        )
    if "\x00" in (parsed.database or ""):
        raise StorageError(f"{url!r}: a file path cannot hold a NUL character")


def file_uri(path: Path, mode: str) -> str:
    """SQLite's URI for ``path`` (made absolute, every special character percent-encoded)."""
    return f"file://{quote(os.path.abspath(path), safe='/')}?mode={mode}"


def _sqlite_path(url: URL, read_only: bool, create: bool) -> Path:
    """The file the URL names, checked: a missing file is created only by ``create``; a
    folder or a device is never taken for a database."""
    database = url.database or ""
    if database in ("", ":memory:"):
        raise StorageError("an in-memory SQLite database cannot be shared: give a file path")
    path = Path(database)
    if path.is_dir():
        raise StorageError(
            f"{path} is a folder, not a database file: give a file in it, e.g. "
            f"{sqlite_url(path / 'gradsweep.db')}"
        )
    if path.exists() and not path.is_file():
        raise StorageError(f"{path} is not a regular file (a device or a pipe), not a database")
    if (read_only or not create) and not path.exists():
        raise StorageError(
            f"no database at {path}: launch a study there, or create it with `gradsweep db upgrade`"
        )
    if not path.exists() and not path.parent.is_dir():
        raise StorageError(f"cannot create {path}: folder {path.parent} does not exist")
    return path


def _read_only_uri(path: Path, note: Note | None) -> str:
    """``mode=ro``, or ``immutable=1`` where a WAL database's folder is read-only: SQLite
    cannot create the ``-shm`` file a WAL reader needs there, and every open would fail with
    "unable to open database file". Immutable reads the file as it is: fine when its
    write-ahead log is empty, refused when it holds changes not yet in the file."""
    uri = file_uri(path, "ro")
    if os.access(path.parent, os.W_OK) or _opens(uri):
        return uri  # (a failure here is said, in one line, by the first query)
    for sidecar in (Path(f"{path}-wal"), Path(f"{path}-journal")):
        if sidecar.exists() and sidecar.stat().st_size > 0:
            raise StorageError(
                f"cannot read {path}: its folder is read-only and {sidecar.name} "
                f"({sidecar.stat().st_size} bytes) holds changes not yet in the file; read it "
                f"where the folder is writable (or copy it with its {sidecar.name} to one)"
            )
    (note or log.warning)(
        f"{path}: its folder is read-only, so it is read as it is now (SQLite immutable "
        "mode); changes made while it is open are not seen"
    )
    return f"{uri}&immutable=1"


def _opens(uri: str) -> bool:
    """Whether SQLite can read the file's schema through this URI (one short connection)."""
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error:
        return False
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _holds_gradsweep(dbapi_conn: Any) -> bool:
    cursor = dbapi_conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STUDIES_TABLE,)
    )
    return cursor.fetchone() is not None


def _sqlite_engine(url: URL, read_only: bool, create: bool, note: Note | None) -> Engine:
    path = _sqlite_path(url, read_only, create)
    if read_only:
        target = _read_only_uri(path, note)
    else:
        target = file_uri(path, "rwc" if create else "rw")

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(
            target, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        conn.isolation_level = None  # transactions are begun explicitly below
        return conn

    # The real URL, so that engine.url names the file (Optuna's storage is opened from it).
    engine = create_engine(url, creator=connect)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        # WAL is written into the file's header: only into gradsweep's own databases (a
        # command refusing another program's file must leave it byte for byte as it was)
        if not read_only and (create or _holds_gradsweep(dbapi_conn)):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

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


@dataclass(frozen=True)
class SchemaState:
    """What a database holds of gradsweep's schema, read without Alembic."""

    versions: tuple[str, ...]  # the rows of gs_alembic_version (one, once migrated)
    has_version_table: bool
    has_studies: bool

    @property
    def current(self) -> bool:
        return self.versions == (HEAD_REVISION,) and self.has_studies

    @property
    def empty(self) -> bool:
        """No trace of gradsweep: another program's database, or a new one."""
        return not self.has_studies and not self.versions


def schema_state(engine: Engine) -> SchemaState:
    """gradsweep's tables and revision rows in the database (two lookups and one query)."""
    with engine.connect() as conn:
        inspector = inspect(conn)
        has_versions = inspector.has_table(VERSION_TABLE)
        has_studies = inspector.has_table(STUDIES_TABLE)
        versions: tuple[str, ...] = ()
        if has_versions:
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            versions = tuple(str(row) for row in rows)
    return SchemaState(versions, has_versions, has_studies)


def _is_current(engine: Engine) -> bool:
    """Whether the schema is at HEAD_REVISION, read with one query (no Alembic)."""
    return schema_state(engine).current


def refuse_unusable(state: SchemaState, where: str, create: bool) -> None:
    """A one-line StorageError for a schema gradsweep cannot read, or must not create."""
    if state.empty and not create:
        raise StorageError(
            f"{where} has no gradsweep results (no {STUDIES_TABLE} table); create one with "
            "`gradsweep launch` or `gradsweep db upgrade`"
        )
    if len(state.versions) > 1:
        raise StorageError(
            f"{where}: {VERSION_TABLE} holds {len(state.versions)} revisions "
            f"({', '.join(state.versions)}) where gradsweep keeps one: which schema it has "
            "is unknown; keep only the row of the revision its tables are at"
        )
    if state.has_studies and not state.versions:
        raise StorageError(
            f"{where} has a {STUDIES_TABLE} table but no revision in {VERSION_TABLE}: not a "
            "schema gradsweep made (or its revision table was emptied); give another database"
        )
    if state.versions and not state.has_studies:
        raise StorageError(
            f"{where}: {VERSION_TABLE} says revision {state.versions[0]}, but there is no "
            f"{STUDIES_TABLE} table: gradsweep's tables were dropped; give another database"
        )


def check_schema(engine: Engine, upgrade: bool) -> None:
    """Upgrade an older schema (or refuse a newer one) before anything reads or writes."""
    if _is_current(engine):
        return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

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
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE serialises already
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            command.upgrade(alembic_config(conn), "head")
    except (CommandError, SQLAlchemyError) as exc:
        raise StorageError(
            f"cannot upgrade the schema from revision {current or 'none'} to {head}: {reason(exc)}"
        ) from None


def open_engine(
    url: str | None = None,
    *,
    read_only: bool = False,
    upgrade: bool = True,
    create: bool = True,
    note: Note | None = None,
) -> Engine:
    """An engine on ``url`` (see resolve_url) whose schema is current; errors are one line.

    An older schema is upgraded first (``upgrade``), also for a read-only engine, through
    a short-lived writable one: every command opens an older database the same way.
    ``create=False``: a SQLite file that does not exist is an error, not a new database
    (a mistyped path in a read command must not leave an empty database behind), and so
    is a database without gradsweep's schema (another program's, or an empty one): only
    ``create`` adds the schema. ``note`` hears how a database was opened where it matters
    to the reader (a read-only folder's SQLite file, read immutable).
    """
    given = resolve_url(url)
    parsed = parse_url(given)
    sqlite = parsed.get_backend_name() == "sqlite"
    where = str(parsed.database) if sqlite else safe_url(given)
    engine = (
        _sqlite_engine(parsed, read_only, create, note)
        if sqlite
        else _postgres_engine(parsed, read_only)
    )
    try:
        _prepare_schema(engine, given, where, read_only=read_only, upgrade=upgrade, create=create)
    except StorageError:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        said = reason(exc)
        if sqlite and not read_only:
            said += _read_only_hint(Path(where))
        raise StorageError(f"cannot open database {safe_url(given)}: {said}") from None
    return engine


def _read_only_hint(path: Path) -> str:
    """Why a writable open of a SQLite file failed, where the file or its folder says it."""
    if path.exists() and not os.access(path, os.W_OK):
        return f" ({path} is read-only, and this writes to it)"
    if not os.access(path.parent, os.W_OK):
        return f" (its folder {path.parent} is read-only, and this writes there)"
    return ""


def _prepare_schema(
    engine: Engine, given: str, where: str, *, read_only: bool, upgrade: bool, create: bool
) -> None:
    """Refuse what cannot be read, then bring an older schema up (never create one unless
    ``create``): the one-query path for a database already current."""
    state = schema_state(engine)
    if state.current:
        return
    refuse_unusable(state, where, create)
    if read_only and upgrade:  # migrated through a short-lived writable engine
        try:
            open_engine(given, upgrade=True, create=False).dispose()
        except StorageError as exc:
            revision = state.versions[0] if state.versions else "none"
            raise StorageError(
                f"{where} is at schema revision {revision}, older than this gradsweep's "
                f"{HEAD_REVISION}, and reading it needs the upgrade, which failed: {exc}"
            ) from None
    check_schema(engine, upgrade=upgrade and not read_only)


def upgrade_database(url: str | None = None) -> str:
    """``gradsweep db upgrade``: create or migrate the schema; returns the revision."""
    engine = open_engine(url, upgrade=True)
    engine.dispose()
    return head_revision()


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages (in a mistyped one too: the text
    between ``user:`` and ``@``)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return PASSWORD.sub(r"\1***@", url)


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
