"""One driver per study: the lease a ``launch`` or ``resume`` holds while it runs a study.

Two drivers on one study would each train every trial (and each mark the other's trials
interrupted when it stops). So a driver takes the study's lease before it writes anything
to the study: one row of ``gs_study_leases`` (study, host, pid, acquired_at, renewed_at).
It renews the row every ``RENEW_SECONDS`` from a background thread and deletes it when it
ends, however it ends. A second driver is refused in one line naming the holder.

A driver that died (``kill -9``, a lost machine) cannot delete its row, so the row expires:
it is taken over once it has gone ``EXPIRY_SECONDS`` without renewal, or at once when it
names a process of this machine (same kernel boot, same pid namespace) that no longer runs.
``resume`` after a kill therefore works at once on the same machine, and within a minute
from another.

Taking the lease is one transaction on either database: an INSERT that does nothing where
the study's row exists, then, where it exists and has expired, an UPDATE conditional on
the holder that was read (its token). Of two drivers racing for a free or an expired lease
exactly one wins. Times are the database server's on PostgreSQL (drivers on several hosts
compare one clock) and this machine's on SQLite (a file the drivers share on one machine).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from gradsweep.errors import GradsweepError
from gradsweep.storage.errors import StorageError
from gradsweep.storage.models import StudyLease
from gradsweep.storage.reconnect import reconnecting

RENEW_SECONDS = 10.0
EXPIRY_SECONDS = 60.0
log = logging.getLogger(__name__)


class StudyBusy(GradsweepError):
    """Another driver holds the study's lease: it is running the study now."""


class LeaseLost(GradsweepError):
    """This driver's lease was taken over (it went unrenewed past its expiry)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a study's lease, as its row says."""

    host: str
    pid: int
    namespace: str | None
    token: str
    acquired_at: datetime
    renewed_at: datetime

    def describe(self) -> str:
        since = self.acquired_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"host {self.host}, pid {self.pid}, since {since}"


def this_namespace() -> str | None:
    """This machine's boot and pid namespace: where a holder's pid means this process
    table's pid (None off Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pids = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{pids}"


def process_gone(holder: Holder) -> bool:
    """Whether the holder is a process of this machine's pid namespace that no longer runs.
    A pid reused since is taken for the holder: its lease then waits for its expiry."""
    if holder.host != socket.gethostname() or holder.namespace != this_namespace():
        return False
    if holder.namespace is None or holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        return False
    return False


def expired(holder: Holder, now: datetime) -> bool:
    """A holder that stopped renewing (for ``EXPIRY_SECONDS``), or that is gone."""
    stale = now - aware(holder.renewed_at) > timedelta(seconds=EXPIRY_SECONDS)
    return stale or process_gone(holder)


def aware(moment: datetime) -> datetime:
    """SQLite gives back the UTC times it was given without their zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def db_now(conn: Connection) -> datetime:
    """The clock every driver of this database compares: PostgreSQL's, else this machine's."""
    if conn.dialect.name == "postgresql":
        return aware(conn.execute(select(func.now())).scalar_one())
    return datetime.now(timezone.utc)


def _holder(conn: Connection, study_id: int) -> Holder | None:
    columns = [StudyLease.host, StudyLease.pid, StudyLease.namespace, StudyLease.token]
    times = [StudyLease.acquired_at, StudyLease.renewed_at]
    row = conn.execute(select(*columns, *times).where(StudyLease.study_id == study_id)).first()
    if row is None:
        return None
    return Holder(
        row.host,
        row.pid,
        row.namespace,
        row.token,
        aware(row.acquired_at),
        aware(row.renewed_at),
    )


def holder(engine: Engine, study_id: int) -> Holder | None:
    """Who holds the study's lease now, expired or not (None: nobody)."""
    with engine.connect() as conn:
        return _holder(conn, study_id)


class Lease:
    """A study's lease, held by this process; renewed in the background until released."""

    def __init__(self, engine: Engine, study_id: int, name: str, token: str) -> None:
        self.engine, self.study_id, self.name, self.token = engine, study_id, name, token
        self.lost: str | None = None  # who took it over, once renewal found it gone
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_renewing(self) -> None:
        self._thread = threading.Thread(
            target=self._renew_until_stopped, name=f"gradsweep-lease-{self.study_id}", daemon=True
        )
        self._thread.start()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(RENEW_SECONDS) and self.lost is None:
            try:
                self.renew()
            except (SQLAlchemyError, StorageError) as exc:  # try again at the next tick
                log.debug("lease of study %s not renewed: %s", self.name, exc)

    def renew(self) -> bool:
        """Move renewed_at to now; False (and ``lost`` set) where the row is no longer ours."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(StudyLease)
                .where(StudyLease.study_id == self.study_id, StudyLease.token == self.token)
                .values(renewed_at=db_now(conn))
            )
            if done.rowcount == 1:
                return True
            now_held = _holder(conn, self.study_id)
        self.lost = now_held.describe() if now_held is not None else "its row was deleted"
        log.warning("the lease on study %s was taken over (%s)", self.name, self.lost)
        return False

    def lost_error(self) -> LeaseLost:
        """What the driver says when it stops for a lost lease."""
        return LeaseLost(
            f"study {self.name!r} was taken over by another driver ({self.lost}) after this "
            f"one went {EXPIRY_SECONDS:.0f} s without renewing its lease; this driver stops "
            "and leaves the study to it"
        )

    def release(self) -> None:
        """Stop renewing and delete the row (if it is still ours); a database that is gone
        leaves it to expire."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(SQLAlchemyError, StorageError), self.engine.begin() as conn:
            conn.execute(
                delete(StudyLease).where(
                    StudyLease.study_id == self.study_id, StudyLease.token == self.token
                )
            )


TAKE_TRIES = 3


@reconnecting
def acquire(engine: Engine, study_id: int, name: str) -> Lease:
    """Take the study's lease for this process, or raise StudyBusy naming its holder."""
    token = uuid.uuid4().hex
    with engine.begin() as conn:
        now = db_now(conn)
        values = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "namespace": this_namespace(),
            "token": token,
            "acquired_at": now,
            "renewed_at": now,
        }
        held: Holder | None = None
        for _ in range(TAKE_TRIES):
            if _insert(conn, study_id, values):
                return Lease(engine, study_id, name, token)
            held = _holder(conn, study_id)
            if held is None:
                continue  # released between the two statements: try again
            if not expired(held, now):
                break
            if _replace(conn, study_id, held.token, values):
                log.warning(
                    "study %s: took over the lease of a driver that is gone (%s)",
                    name,
                    held.describe(),
                )
                return Lease(engine, study_id, name, token)
    who = held.describe() if held is not None else "another driver"
    raise StudyBusy(
        f"study {name!r} is being run by another driver ({who}); wait for it to end or stop "
        f"it (a driver that died frees the study within {EXPIRY_SECONDS:.0f} s)"
    )


def _insert(conn: Connection, study_id: int, values: dict[str, object]) -> bool:
    """The study's row, where there is none; whether it was written."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(StudyLease).values(study_id=study_id, **values)
    statement = statement.on_conflict_do_nothing(index_elements=["study_id"])
    # (psycopg gives no row count for it: what it returns says whether it was written)
    return conn.execute(statement.returning(StudyLease.study_id)).first() is not None


def _replace(conn: Connection, study_id: int, token: str, values: dict[str, object]) -> bool:
    """The expired holder's row made ours, unless another driver replaced it first."""
    done = conn.execute(
        update(StudyLease)
        .where(StudyLease.study_id == study_id, StudyLease.token == token)
        .values(**values)
    )
    return done.rowcount == 1


@contextmanager
def study_lease(engine: Engine, study_id: int, name: str) -> Iterator[Lease]:
    """Hold the study's lease for the block: taken (or StudyBusy), renewed, released."""
    lease = acquire(engine, study_id, name)
    lease.start_renewing()
    try:
        yield lease
    finally:
        lease.release()
