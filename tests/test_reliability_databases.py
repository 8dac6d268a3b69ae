"""Databases opened exactly as named (docs/reliability.md, "Databases opened as named").

Every case runs the real command line (typer's CliRunner) on real files and servers and
checks what the user reads (one line on stderr, the exit code) and that nothing changed:
the SQLite file's bytes (sha256) and, for PostgreSQL, every table and view with its
columns, row count and rows.
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gradsweep import problem_factory
from gradsweep.cli import app
from gradsweep.dashboards.app import create_app
from gradsweep.dashboards.callbacks import render_page
from gradsweep.storage.engine import open_engine, sqlite_url
from gradsweep.storage.errors import StorageError
from gradsweep.trainers.problems.base import TaskInfo
from gradsweep.trainers.problems.toy import ToyRegression
from tests.conftest import PG_ADMIN_URL, PostgresServer
from tests.dashboards.study import build_three_task_study

NO_RESULTS = "has no gradsweep results (no gs_studies table); create one with `gradsweep launch`"


# -- what a user runs, and what is checked after -------------------------------------------


def read_commands(out: Path) -> list[list[str]]:
    """Every command that reads a study (the dashboard's page load is checked apart)."""
    return [
        ["status"],
        ["status", "three"],
        ["query", "studies"],
        ["query", "trials", "--study", "three"],
        ["query", "curves", "--study", "three", "--format", "csv"],
        ["report", "three", "--out", str(out / "report.html")],
        ["export", "three", "--out", str(out / "export"), "--format", "csv"],
    ]


def every_command(out: Path) -> list[list[str]]:
    """The read commands and those that would write into an existing gradsweep database
    (compare stores its comparison, export --optuna an Optuna study, resume its trials):
    on a database without gradsweep's schema, each must refuse and change nothing."""
    return [
        *read_commands(out),
        ["compare", "three"],
        ["export", "three", "--optuna", "o"],
        ["resume", "three"],
        ["dashboard", "--port", "1"],
    ]


def cli(argv: list[str], url: str) -> Any:
    return CliRunner().invoke(app, [*argv, "--db", url])


def one_error_line(run: Any) -> str:
    """The run failed with exit 2 and said why in one line, without a traceback."""
    assert run.exit_code == 2, (run.exit_code, run.output, run.exception)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "[SQL" not in lines[0] and "sqlalche.me" not in lines[0]
    return str(lines[0])


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pg_digest(url: str) -> list[tuple[Any, ...]]:
    """Every table and view of the database: its kind, columns, row count and rows."""
    seen: list[tuple[Any, ...]] = []
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table, kind in tables:
            columns = conn.execute(
                "SELECT column_name, data_type, character_maximum_length "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position",
                (schema, table),
            ).fetchall()
            rows: Any = None
            if kind == "BASE TABLE":
                rows = conn.execute(
                    "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) "
                    f'FROM "{schema}"."{table}" t'
                ).fetchone()
            seen.append((schema, table, kind, tuple(columns), rows))
    return seen


def build_settled(path: Path) -> None:
    """The three-task study in a SQLite file, its write-ahead log merged in: later closes
    of the writer's connections then change nothing in the file's bytes."""
    build_three_task_study(sqlite_url(path))
    gc.collect()  # the writer's engine and its pooled connections
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def copy_closed(source: Path, target: Path) -> None:
    """A copy of a SQLite database as a cleanly closed WAL database leaves it: the one file,
    no -wal or -shm beside it."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def folder_listing(folder: Path) -> set[str]:
    """The files in a folder but SQLite's own sidecars (a reader may leave -wal and -shm)."""
    return {p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm"))}


@pytest.fixture
def pg(postgres: PostgresServer | None) -> PostgresServer:
    if postgres is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    return postgres


# -- 1. paths holding URL-special characters ------------------------------------------------

SPECIAL_NAMES = [
    "a#b.db",
    "a%3Fb.db",
    "a?b.db",
    "with two  spaces.db",
    "ünïcødé-データ.db",
    "100%.db",
    "a&b=c;d.db",
    "#start.db",
    "end#",
]


@pytest.mark.parametrize("name", SPECIAL_NAMES)
def test_a_path_with_url_characters_opens_the_file_named(name: str, tmp_path: Path) -> None:
    """Read commands open exactly that file, read-only: no other file appears beside it
    (SQLite's URI mode used to open the part before a '#' or '?', creating it), and its
    bytes stay as they were."""
    folder = tmp_path / "dbs"
    folder.mkdir()
    path = folder / name
    url = sqlite_url(path)
    build_settled(path)
    assert folder_listing(folder) == {name}
    before = file_digest(path)
    out = tmp_path / "out"
    out.mkdir()
    for argv in read_commands(out):
        run = cli(argv, url)
        assert run.exit_code == 0, (argv, run.stderr)
        assert run.stderr == ""
    assert "three" in cli(["status"], url).stdout
    engine = open_engine(url, read_only=True)
    client = create_app(engine).server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/study/three").status_code == 200
    assert render_page(engine, "/study/three")[4] == "three"
    engine.dispose()
    assert folder_listing(folder) == {name}
    assert file_digest(path) == before


@pytest.mark.parametrize("name", ["a?b.db", "a#b.db", "a%3Fb.db"])
def test_optunas_storage_opens_the_same_file(name: str, tmp_path: Path) -> None:
    """`export --optuna` hands Optuna the engine's URL: its study lands in the file named."""
    path = tmp_path / name
    build_settled(path)
    run = cli(["export", "three", "--optuna", "o"], sqlite_url(path))
    assert run.exit_code == 0, run.stderr
    assert folder_listing(tmp_path) == {name}
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT study_name FROM studies").fetchall() == [("o",)]


@pytest.mark.parametrize("name", ["a#b.db", "with space.db", "ünïcødé.db"])
def test_characters_a_url_allows_raw_need_no_encoding(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    build_three_task_study(sqlite_url(path))
    run = cli(["status", "three"], f"sqlite:///{path}")
    assert run.exit_code == 0 and "three" in run.stdout, run.stderr
    assert folder_listing(tmp_path) == {name}


def test_a_raw_question_mark_is_refused_with_the_spelling_that_works(tmp_path: Path) -> None:
    """'?' starts a URL's query (SQLAlchemy dropped the rest of the name silently): refused,
    naming the %3F spelling, and nothing is opened or created."""
    build_three_task_study(sqlite_url(tmp_path / "a?b.db"))
    for argv in (["status"], ["compare", "x"], ["db", "upgrade"]):
        line = one_error_line(cli(argv, f"sqlite:///{tmp_path}/a?b.db"))
        assert f"sqlite:///{tmp_path}/a%3Fb.db" in line
    assert folder_listing(tmp_path) == {"a?b.db"}
    assert cli(["status"], f"sqlite:///{tmp_path}/a%3Fb.db").exit_code == 0


@pytest.mark.parametrize("given", ["cancer.db", "./sub/cancer.db", "~/cancer.db", "ABSOLUTE"])
def test_a_bare_path_is_that_sqlite_file(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--db cancer.db` (relative, ./, ~, absolute; and in $GRADSWEEP_DB) is
    `sqlite:///` of the file's absolute path, for every command and gradsweep.open."""
    import gradsweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / ("sub" if given.startswith("./") else "") / "cancer.db"
    path.parent.mkdir(exist_ok=True)
    given = str(path) if given == "ABSOLUTE" else given
    assert cli(["db", "upgrade"], given).exit_code == 0  # creates it, as its URL would
    build_three_task_study(sqlite_url(path))
    out = tmp_path / "out"
    out.mkdir()
    for argv in read_commands(out):
        run = cli(argv, given)
        assert run.exit_code == 0 and run.stderr == "", (argv, run.stderr)
    assert "three" in cli(["status"], given).stdout
    monkeypatch.setenv("GRADSWEEP_DB", given)
    assert "three" in CliRunner().invoke(app, ["status"]).stdout
    assert gradsweep.open(given).studies()["name"].tolist() == ["three"]
    assert sorted(p.name for p in path.parent.glob("*.db")) == ["cancer.db"]


@pytest.mark.parametrize("given", ["postgres//h/db", "sqlite:/x.db", "mysql:"])
def test_a_value_neither_a_path_nor_a_url_is_one_line_with_a_hint(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["status"], ["db", "upgrade"], ["resume", "x"]):
        line = one_error_line(cli(argv, given))
        assert line == (
            f"error: not a database URL or path: {given!r} (a SQLite file: path/to/file.db "
            "or sqlite:///path/to/file.db; PostgreSQL: postgresql://user@host/db)"
        )
    assert list(tmp_path.iterdir()) == []


def test_launch_and_db_upgrade_create_the_file_named(tmp_path: Path) -> None:
    for name in ("new#one.db", "new?two.db", "new three.db"):
        run = CliRunner().invoke(app, ["db", "upgrade", "--db", sqlite_url(tmp_path / name)])
        assert run.exit_code == 0, run.stderr
    assert folder_listing(tmp_path) == {"new#one.db", "new?two.db", "new three.db"}


# -- 2. databases without gradsweep's schema: refused, unchanged ----------------------------


def foreign_sqlite(path: Path) -> None:
    """Another program's SQLite file, in its own (rollback) journal mode."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE inventory (id INTEGER PRIMARY KEY, item TEXT)")
    conn.executemany("INSERT INTO inventory (item) VALUES (?)", [("bolt",), ("nut",)])
    conn.execute("CREATE VIEW items AS SELECT item FROM inventory")
    conn.commit()
    conn.close()


def optuna_only_sqlite(path: Path) -> None:
    """A file holding only an Optuna study's tables (Optuna's own schema, no gs_ table)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
    conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
    conn.execute("INSERT INTO alembic_version VALUES ('v3.2.0.a')")
    conn.commit()
    conn.close()


NOT_GRADSWEEP = {
    "another program's file": foreign_sqlite,
    "a zero-byte file": lambda path: path.write_bytes(b""),
    "an Optuna-only file": optuna_only_sqlite,
}


@pytest.mark.parametrize("kind", list(NOT_GRADSWEEP))
def test_every_command_refuses_a_sqlite_file_without_the_schema(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    NOT_GRADSWEEP[kind](path)
    before = file_digest(path)
    out = tmp_path / "out"
    out.mkdir()
    for argv in every_command(out):
        line = one_error_line(cli(argv, sqlite_url(path)))
        assert line == f"error: {path} {NO_RESULTS} or `gradsweep db upgrade`", argv
    with pytest.raises(StorageError, match="no gradsweep results"):
        open_engine(sqlite_url(path), read_only=True)  # the dashboard's open
    assert file_digest(path) == before
    assert folder_listing(tmp_path) == {"other.db", "out"} and not any(out.iterdir())


def test_spec_check_counts_a_new_study_there_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    foreign_sqlite(path)
    before = file_digest(path)
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "study: s\nproblem: {name: toy, params: {train_samples: 60, test_samples: 10, "
        "batch_size: 10}}\nbudget: {steps: 2}\narms:\n  static: {weights: [[1, 1]]}\n"
    )
    run = cli(["spec", "check", str(spec)], sqlite_url(path))
    assert run.exit_code == 0, run.stderr
    assert "no gradsweep results" in run.stderr and "counted as a new study" in run.stderr
    assert file_digest(path) == before


def test_launch_and_db_upgrade_still_add_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    foreign_sqlite(path)
    assert cli(["db", "upgrade"], sqlite_url(path)).exit_code == 0
    assert cli(["status"], sqlite_url(path)).exit_code == 0
    with sqlite3.connect(path) as conn:  # the other program's table is kept
        assert conn.execute("SELECT count(*) FROM inventory").fetchone() == (2,)


@pytest.mark.parametrize("kind", ["an empty database", "another program's database"])
def test_every_command_refuses_a_postgres_database_without_the_schema(
    kind: str, pg: PostgresServer, tmp_path: Path
) -> None:
    url = pg.new_database()
    if kind != "an empty database":
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE inventory (id serial PRIMARY KEY, item text)")
            conn.execute("INSERT INTO inventory (item) VALUES ('bolt'), ('nut')")
            conn.execute("CREATE VIEW items AS SELECT item FROM inventory")
    before = pg_digest(url)
    out = tmp_path / "out"
    out.mkdir()
    for argv in every_command(out):
        line = one_error_line(cli(argv, url))
        assert line.endswith(f"{NO_RESULTS} or `gradsweep db upgrade`"), (argv, line)
    with pytest.raises(StorageError, match="no gradsweep results"):
        open_engine(url, read_only=True)
    assert pg_digest(url) == before and not any(out.iterdir())


def test_read_commands_and_the_dashboard_change_nothing_in_a_gradsweep_database(
    db_url: str, tmp_path: Path
) -> None:
    sqlite_path = Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite") else None
    if sqlite_path:
        build_settled(sqlite_path)
    else:
        build_three_task_study(db_url)

    def digest() -> Any:
        return file_digest(sqlite_path) if sqlite_path else pg_digest(db_url)

    before = digest()
    for argv in read_commands(tmp_path):
        run = cli(argv, db_url)
        assert run.exit_code == 0, (argv, run.stderr)
    engine = open_engine(db_url, read_only=True)
    client = create_app(engine).server.test_client()
    assert client.get("/").status_code == 200 and client.get("/study/three").status_code == 200
    assert render_page(engine, "/")[1] is not None
    assert render_page(engine, "/study/three")[4] == "three"
    engine.dispose()
    assert digest() == before


# -- 3. drivers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql+asyncpg://postgres@127.0.0.1/x", "unsupported driver 'postgresql+asyncpg'"),
        ("postgresql+psycopg2://postgres@127.0.0.1/x", "unsupported driver 'postgresql+psycopg2'"),
        ("postgresql+pg8000://postgres@127.0.0.1/x", "unsupported driver 'postgresql+pg8000'"),
        ("sqlite+nope:///x.db", "unsupported driver 'sqlite+nope'"),
        ("sqlite+aiosqlite:///x.db", "unsupported driver 'sqlite+aiosqlite'"),
        ("mysql://root:hunter2@127.0.0.1/x", "unsupported database 'mysql'"),
        ("oracle://u@h/x", "unsupported database 'oracle'"),
        ("postgres://postgres@127.0.0.1/x", "unsupported database 'postgres'"),
    ],
)
def test_an_unsupported_driver_is_refused_not_replaced(
    url: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["status"], ["db", "upgrade"]):
        line = one_error_line(cli(argv, url))
        assert said in line and "hunter2" not in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("driver", ["sqlite", "sqlite+pysqlite"])
def test_the_supported_sqlite_spellings(driver: str, tmp_path: Path) -> None:
    url = f"{driver}:///{tmp_path / 'x.db'}"
    assert cli(["db", "upgrade"], url).exit_code == 0
    assert cli(["status"], url).exit_code == 0


def test_the_supported_postgres_spellings(pg: PostgresServer) -> None:
    url = pg.new_database()
    assert cli(["db", "upgrade"], url).exit_code == 0
    psycopg_url = url.replace("postgresql://", "postgresql+psycopg://")
    assert cli(["status"], psycopg_url).exit_code == 0


# -- 4. a read-only database in a read-only folder -----------------------------------------


@contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """The folder (and what is in it) made read-only for this process. As root, which
    writes through permissions, a read-only bind mount of the folder onto itself; else
    chmod. Skips, saying why, where neither can be done."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("mount") is None:
        pytest.skip("running as root without mount(8): cannot make a folder read-only")
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"running as root and cannot bind-mount: {bind.stderr.decode().strip()}")
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True, check=False
        )
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr.decode().strip()}")
        if os.access(folder, os.W_OK):
            pytest.skip("the read-only mount is still writable for this process")
        yield
    finally:  # lazily: a test's pooled connections may still hold the files open
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def test_a_database_in_a_read_only_folder_is_readable(tmp_path: Path) -> None:
    """WAL readers need a -shm file the folder cannot hold: the file is read immutable, and
    a note (not an error) says so; a command that writes says why it cannot."""
    build_settled(tmp_path / "built.db")
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "r#1.db"
    copy_closed(tmp_path / "built.db", path)
    before = file_digest(path)
    out = tmp_path / "out"
    out.mkdir()
    with read_only_folder(folder):
        for argv in read_commands(out):
            run = cli(argv, sqlite_url(path))
            assert run.exit_code == 0, (argv, run.stderr)
            notes = run.stderr.strip().splitlines()
            assert len(notes) == 1 and notes[0].startswith("note: ") and "read-only" in notes[0]
        assert "three" in cli(["status"], sqlite_url(path)).stdout
        engine = open_engine(sqlite_url(path), read_only=True)
        assert create_app(engine).server.test_client().get("/").status_code == 200
        assert render_page(engine, "/study/three")[4] == "three"
        engine.dispose()
        line = one_error_line(cli(["compare", "three"], sqlite_url(path)))
        assert "read-only, and this writes to it" in line
    assert file_digest(path) == before
    assert (out / "report.html").exists()


def test_a_read_only_folder_with_unmerged_changes_is_refused(tmp_path: Path) -> None:
    """A -wal file holding changes an immutable read would not see: one line, not stale
    results."""
    source = tmp_path / "w"
    source.mkdir()
    build_three_task_study(sqlite_url(source / "r.db"))
    writer = sqlite3.connect(source / "r.db")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE gs_studies SET status = 'completed'")
    writer.commit()
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(source / "r.db", folder / "r.db")
    shutil.copy(source / "r.db-wal", folder / "r.db-wal")
    writer.close()
    with read_only_folder(folder):
        line = one_error_line(cli(["status"], sqlite_url(folder / "r.db")))
    assert "r.db-wal (" in line and "not yet in the file" in line


def test_an_older_database_in_a_read_only_folder_says_it_needs_the_upgrade(
    tmp_path: Path,
) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from gradsweep.storage.engine import alembic_config

    folder = tmp_path / "ro"
    folder.mkdir()
    raw = create_engine(f"sqlite:///{folder / 'old.db'}")
    with raw.begin() as conn:
        command.upgrade(alembic_config(conn), "0005")
    raw.dispose()
    with read_only_folder(folder):
        line = one_error_line(cli(["status"], sqlite_url(folder / "old.db")))
    assert "revision 0005, older than this gradsweep's" in line and "upgrade" in line


# -- 6. what is not a database, and a schema gradsweep cannot read --------------------------


def not_databases(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """URL → (the case, what its one line says)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database " * 100)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("SQLite format 3 is not this\n" * 10)
    return {
        sqlite_url(tmp_path): ("a folder", "is a folder, not a database file"),
        sqlite_url(fifo): ("a named pipe", "is not a regular file"),
        "sqlite:////dev/null": ("a device", "is not a regular file"),
        sqlite_url(garbage): ("garbage", "file is not a database"),
        sqlite_url(text_file): ("a text file", "file is not a database"),
        "sqlite:///a%00b.db": ("a NUL in the path", "cannot hold a NUL character"),
        sqlite_url(tmp_path / "no" / "x.db"): ("a missing folder", "no database at"),
        "sqlite://": ("in memory", "in-memory SQLite database cannot be shared"),
    }


def test_what_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    for url, (case, said) in not_databases(tmp_path).items():
        before = folder_listing(tmp_path)
        for argv in (["status"], ["compare", "x"], ["query", "studies"]):
            line = one_error_line(cli(argv, url))
            assert said in line, (case, argv, line)
        assert folder_listing(tmp_path) == before, case
    assert (
        file_digest(tmp_path / "garbage.db") == hashlib.sha256(b"not a database " * 100).hexdigest()
    )


def test_launch_into_a_folder_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(cli(["db", "upgrade"], sqlite_url(tmp_path)))
    assert "is a folder, not a database file" in line


def unusable_schemas() -> dict[str, tuple[str, str]]:
    """What is done to a current database → what the one line says."""
    return {
        "two revision rows": (
            "INSERT INTO gs_alembic_version VALUES ('0010')",
            "gs_alembic_version holds 2 revisions",
        ),
        "no revision row": ("DELETE FROM gs_alembic_version", "no revision in gs_alembic_version"),
        "gs_studies dropped": ("DROP TABLE gs_studies CASCADE", "there is no gs_studies table"),
    }


@pytest.mark.parametrize("case", list(unusable_schemas()))
def test_a_schema_gradsweep_cannot_read_is_one_line(case: str, db_url: str) -> None:
    statement, said = unusable_schemas()[case]
    engine = open_engine(db_url)
    if "DROP" in statement and engine.dialect.name == "sqlite":
        statement = "DROP TABLE gs_studies"
    with engine.begin() as conn:
        if "DROP" in statement and engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.execute(text(statement))
    engine.dispose()
    for argv in (["status"], ["compare", "x"], ["db", "upgrade"]):
        line = one_error_line(cli(argv, db_url))
        assert said in line, (argv, line)


def test_a_database_error_is_one_clean_line(pg: PostgresServer) -> None:
    """A role that may not read gradsweep's tables: the driver's reason, without the SQL
    SQLAlchemy ran or its error-reference link (both were in the line before)."""
    url = pg.new_database()
    assert cli(["db", "upgrade"], url).exit_code == 0
    role = f"gs_reader_{pg.run_id}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        reader = url.replace("postgres@", f"{role}@")
        line = one_error_line(cli(["status"], reader))
        assert line.startswith("error: cannot open database") and "permission denied" in line
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


# -- 5. names: the same spec behaves the same on both databases -----------------------------

LONG_TASK = "t" * 150


@problem_factory
def named_tasks(names: list[str], metric: str = "mse", nul: bool = False) -> ToyRegression:
    """A user's problem whose task (and metric) names the spec chooses (``nul``: its first
    task's name gets a NUL, which no spec value holds)."""
    problem = ToyRegression(
        tasks=len(names), train_samples=60, test_samples=20, val_samples=20, batch_size=20
    )
    names = [names[0] + "\x00" * nul, *names[1:]]
    problem.tasks = tuple(TaskInfo(name, metric, "min") for name in names)
    return problem


def long_names_spec(
    folder: Path, study: str, names: list[str], metric: str = "mse", nul: bool = False
) -> Path:
    import yaml

    spec = {
        "study": study,
        "problem": {
            "name": "tests.test_reliability_databases:named_tasks",
            "params": {"names": names, "metric": metric, "nul": nul},
        },
        "budget": {"steps": 6, "trace_every": 3, "eval_every": 3},
        "seeds": [0],
        "arms": {
            "static": {"weights": [[1.0] * len(names)]},
            "examples.inverse_norm_balancer:InverseGradientNorm": {},
        },
        "resources": {"pack": 1},
        "max_concurrent": 1,
    }
    path = folder / f"{study}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


@pytest.mark.parametrize(
    ("names", "metric", "said"),
    [
        (["a", "c"], "nul", "task 0's name 'a\\x00', which holds a control character (\\x00)"),
        (["a\x00b", "c"], "mse", "problem.params.names[0]: holds a NUL character"),
        (["a", "line\nbreak"], "mse", "task 1's name 'line\\nbreak', which holds a control"),
        (["a", "tab\there"], "mse", "holds a control character (\\t)"),
        (["a", "b\u2028c"], "mse", "holds a control character (\\u2028)"),
        (["a", "b"], "m\x1b[31m", "task 0's metric"),
        (["same", "same"], "mse", "names two tasks 'same'"),
    ],
)
def test_task_and_metric_names_are_checked_by_spec_check(
    names: list[str], metric: str, said: str, tmp_path: Path
) -> None:
    nul = metric == "nul"
    path = long_names_spec(tmp_path, "bad-names", names, "mse" if nul else metric, nul)
    line = one_error_line(CliRunner().invoke(app, ["spec", "check", str(path)]))
    assert said in line, line


@pytest.mark.parametrize(
    ("yaml_text", "said"),
    [
        ('problem: {name: toy, params: {note: "a\\0b"}}', "problem.params.note: holds a NUL"),
        ('problem: "to\\x01y"', "problem.name: holds a control character (\\x01)"),
        ('problem: "to\\0y"', "problem: holds a NUL character"),
    ],
)
def test_nul_and_control_characters_in_a_spec_are_one_line(
    yaml_text: str, said: str, tmp_path: Path
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"study: s\n{yaml_text}\nbudget: {{steps: 2}}\narms:\n  static: {{weights: [[1, 1]]}}\n"
    )
    line = one_error_line(CliRunner().invoke(app, ["spec", "check", str(spec)]))
    assert said in line, line


def test_a_users_balancer_key_with_a_control_character_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "study: s\nproblem: toy\nbudget: {steps: 2}\narms:\n  static: {weights: [[1, 1]]}\n"
        '  "examples.inverse\\x07norm_balancer:InverseGradientNorm": {}\n'
    )
    line = one_error_line(CliRunner().invoke(app, ["spec", "check", str(spec)]))
    assert "holds a control character (\\x07)" in line


def test_a_study_name_over_its_limit_is_said_by_spec_check(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"study: {'s' * 201}\nproblem: toy\nbudget: {{steps: 2}}\n"
        "arms:\n  static: {weights: [[1, 1]]}\n"
    )
    line = one_error_line(CliRunner().invoke(app, ["spec", "check", str(spec)]))
    assert "study: must be at most 200 characters" in line


def test_long_names_are_stored_alike_on_both_databases(db_url: str) -> None:
    """Every name column past its old VARCHAR limit, written and read back whole."""
    from datetime import datetime, timezone

    from gradsweep.storage import queries
    from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
    from gradsweep.storage.writer import ResultsWriter

    tasks = [LONG_TASK, "ü" * 120]
    writer = ResultsWriter(open_engine(db_url))
    problem = "a_package." + "m" * 300 + ":make_problem"
    study = writer.get_or_create_study(
        StudyRecord("long", "{}", "h", problem, tasks, "normalized_loss")
    )
    key = "x" * 40 + "/" + ",".join(["0.0416667"] * 60) + "/s0"
    balancer = "examples.inverse_norm_balancer:InverseGradientNorm"
    arm = "inverse_gradient_norm_with_a_long_declared_name_" + "z" * 20
    trial = writer.upsert_trials(study, [TrialRecord(key, arm, balancer, {}, None, None, 0)])[key]
    node, device = "host-" + "n" * 400, "cuda:" + "0," * 80
    now = datetime.now(timezone.utc)
    writer.start_trials([trial], now, pack="p" * 250)
    writer.set_placement(trial, node, device)
    metric = "metric_" + "m" * 150
    rows = [
        EpochRow(e, e, t, None, 1.0, metric, 1.0, {metric: 1.0}, 1.0)
        for e in range(2)
        for t in tasks
    ]
    writer.finish_trial(
        trial,
        TrialOutcome("completed", None, node, device, 1.0, 0.5, [1.0, 1.0], [1.0, 1.0], None, now),
        rows=rows,
    )
    stored = queries.trials(open_engine(db_url, read_only=True), study="long").iloc[0]
    assert (stored["key"], stored["arm"], stored["balancer"]) == (key, arm, balancer)
    assert (stored["node"], stored["device"], stored["pack"]) == (node, device, "p" * 250)
    curves = queries.curves(open_engine(db_url, read_only=True), "long")
    assert set(curves["task"]) == set(tasks) and set(curves["metric_name"]) == {metric}


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_spec_with_long_names_launches_alike_on_both_databases(
    db_url: str, tmp_path: Path
) -> None:
    """The tester's case: a 150-character task name and a user's balancer (its import path
    is the ``balancer`` column) launched to the end, every trial recorded, on either."""
    from gradsweep.search.launch import LaunchOptions, launch
    from gradsweep.spec import load_spec
    from gradsweep.storage import queries

    path = long_names_spec(tmp_path, "long-names", [LONG_TASK, "short"])
    run = CliRunner().invoke(app, ["spec", "check", str(path), "--db", db_url])
    assert run.exit_code == 0, run.stderr
    engine = open_engine(db_url)
    outcome = launch(load_spec(path), engine, LaunchOptions(quiet=True))
    assert outcome.status == "completed" and outcome.completed == outcome.planned == 2
    trials = queries.trials(engine, study="long-names")
    assert set(trials["status"]) == {"completed"}
    assert "examples.inverse_norm_balancer:InverseGradientNorm" in set(trials["balancer"])
    assert LONG_TASK in set(queries.curves(engine, "long-names")["task"])
