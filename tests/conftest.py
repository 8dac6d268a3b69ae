"""Shared fixtures: real databases (SQLite files and a PostgreSQL server) and one Ray session.

PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust auth), overridable with
GRADSWEEP_TEST_PG. Without a reachable server its cases skip with the reason, except in
CI (``CI=true``), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("GRADSWEEP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


class PostgresServer:
    """Creates a fresh database per test and drops them all at the end of the run."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.run_id = uuid.uuid4().hex[:8]
        self.created: list[str] = []

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            self.admin_url.replace("postgresql+psycopg", "postgresql"),
            autocommit=True,
            connect_timeout=5,
        )

    def new_database(self) -> str:
        name = f"gradsweep_test_{self.run_id}_{len(self.created)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    server = PostgresServer(PG_ADMIN_URL)
    try:
        server._admin().close()
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true requires it)")
        yield None
        return
    yield server
    server.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    server: PostgresServer | None = request.getfixturevalue("postgres")
    if server is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    return server.new_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole run: 2 CPUs and 2 *logical* GPUs for scheduling tests."""
    import logging

    import ray

    ray.init(
        address="local",  # a new local Ray, even if a `ray start` cluster runs here
        num_cpus=2,
        num_gpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_session: None) -> str:
    """Where a second driver (a `gradsweep launch` subprocess) joins the shared session."""
    import ray

    return str(ray.get_runtime_context().gcs_address)
