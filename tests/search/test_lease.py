"""One driver per study: the lease, on both databases, and two real drivers racing for one
study on the shared Ray session (docs/reliability.md, "Two drivers, SIGTERM, a trial that
never returns")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.search.launch import LaunchOptions, launch, resume
from gradsweep.spec import load_spec
from gradsweep.storage import lease as lease_module
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.lease import (
    EXPIRY_SECONDS,
    LeaseLost,
    StudyBusy,
    acquire,
    holder,
    study_lease,
    this_namespace,
)
from gradsweep.storage.models import StudyLease
from gradsweep.storage.records import StudyRecord
from gradsweep.storage.writer import ResultsWriter
from tests.search.specs import write_spec
from tests.search.test_launch import launch_process, wait_for_completed

QUIET = LaunchOptions(quiet=True)
BUSY = r"study 'leased' is being run by another driver \(host .+, pid \d+, since .+ UTC\)"


def new_study(engine: Engine, name: str = "leased") -> int:
    record = StudyRecord(
        name=name,
        spec_text="{}",
        spec_hash="h",
        problem="toy",
        task_names=["a"],
        objective_name="normalized_loss",
        objective_direction="min",
        task_metrics=None,
        planned=1,
    )
    return ResultsWriter(engine).get_or_create_study(record)


def set_holder(engine: Engine, study_id: int, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(update(StudyLease).where(StudyLease.study_id == study_id).values(**values))


def dead_pid() -> int:
    """A process id that ran here and is gone."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_held_lease_refuses_a_second_driver_in_one_line(db_url: str) -> None:
    engine = open_engine(db_url, create=True)
    study = new_study(engine)
    with study_lease(engine, study, "leased"):
        with pytest.raises(StudyBusy, match=BUSY) as refused:
            acquire(engine, study, "leased")
        assert "\n" not in str(refused.value)
        held = holder(engine, study)
        assert held is not None and held.host == socket.gethostname()
    assert holder(engine, study) is None  # released at the end
    acquire(engine, study, "leased").release()


def test_only_one_of_many_racing_drivers_takes_the_lease(db_url: str) -> None:
    """Eight threads, each with its own engine, at once: one wins, seven are refused."""
    engine = open_engine(db_url, create=True)
    study = new_study(engine)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def race() -> None:
        own = open_engine(db_url)
        start.wait()
        try:
            acquire(own, study, "leased")
            outcomes.append("won")
        except StudyBusy:
            outcomes.append("refused")

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]


def test_a_lease_expires_unrenewed_or_at_once_when_its_process_is_gone(db_url: str) -> None:
    engine = open_engine(db_url, create=True)
    study = new_study(engine)
    acquire(engine, study, "leased")  # never released: as a driver killed with SIGKILL
    old = datetime.now(timezone.utc) - timedelta(seconds=EXPIRY_SECONDS - 5)
    set_holder(engine, study, host="elsewhere", pid=1, namespace=None, renewed_at=old)
    with pytest.raises(StudyBusy, match="host elsewhere, pid 1"):
        acquire(engine, study, "leased")  # another host's, renewed 55 s ago: it may run
    older = old - timedelta(seconds=10)
    set_holder(engine, study, renewed_at=older)
    acquire(engine, study, "leased")  # 65 s without renewal: expired, taken over
    taken = holder(engine, study)
    assert taken is not None and taken.pid == os.getpid()

    if this_namespace() is None:
        pytest.skip("a process is looked up only on Linux")
    gone = dead_pid()
    set_holder(engine, study, pid=gone, namespace=this_namespace())
    acquire(engine, study, "leased")  # this machine's process, gone: taken at once
    set_holder(engine, study, pid=gone, namespace="another boot/pid:[1]")
    with pytest.raises(StudyBusy):  # a pid of another pid namespace (a container) is not ours
        acquire(engine, study, "leased")


def test_renewal_keeps_the_lease_and_notices_a_take_over(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0.1)
    engine = open_engine(db_url, create=True)
    study = new_study(engine)
    with study_lease(engine, study, "leased") as held:
        first = holder(engine, study)
        time.sleep(1.2)
        renewed = holder(engine, study)
        assert first is not None and renewed is not None
        assert renewed.renewed_at > first.renewed_at and renewed.acquired_at == first.acquired_at
        set_holder(engine, study, token="someone-else", host="elsewhere", pid=7)
        deadline = time.monotonic() + 10
        while held.lost is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert held.lost is not None and "host elsewhere, pid 7" in held.lost
        stopped = held.lost_error()
        assert isinstance(stopped, LeaseLost) and "taken over by another driver" in str(stopped)
    assert holder(engine, study).host == "elsewhere"  # type: ignore[union-attr]  # not ours


# -- two real drivers on the shared Ray session ------------------------------------------


def lease_spec(folder: Path, name: str) -> Path:
    """14 unpacked trials of 160 steps: long enough for a second driver to come."""
    return write_spec(
        folder,
        name,
        budget={"steps": 160, "trace_every": 4},
        seeds=[0, 1],
        arms={"grid": {"resolution": 3}},
        resources={"pack": 1},
    )


def wait_for_lease(engine: Engine, name: str, timeout: float = 120) -> int:
    """The pid of the driver holding the study's lease, once one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            study = queries.find_study(engine, name).id
            held = holder(engine, study)
        except Exception:  # not created yet
            held = None
        if held is not None:
            return held.pid
        time.sleep(0.2)
    raise AssertionError(f"{name}: no driver took the lease in {timeout} s")


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_second_launch_or_resume_of_a_running_study_is_refused(
    tmp_path: Path, sqlite_url: str, ray_address: str
) -> None:
    """The tester's case: the same spec launched twice on one database. The second driver
    is refused in one line naming the first; every trial trains once (attempts 1)."""
    path = lease_spec(tmp_path, "leased")
    engine = open_engine(sqlite_url, create=True)
    process = launch_process(path, sqlite_url, ray_address)
    try:
        first = wait_for_lease(engine, "leased")
        assert first == process.pid
        with pytest.raises(StudyBusy, match=BUSY + r"; wait for it") as refused:
            launch(load_spec(path), engine, QUIET)
        assert f"pid {process.pid}," in str(refused.value)
        cli = CliRunner()
        for command in (["launch", str(path)], ["resume", "leased"]):
            run = cli.invoke(app, [*command, "--quiet", "--db", sqlite_url])
            lines = run.stderr.strip().splitlines()
            assert run.exit_code == 2 and len(lines) == 1, run.stderr
            assert lines[0].startswith("error: study 'leased' is being run by another driver")
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    trials = queries.trials(engine, study="leased")
    assert len(trials) == 14 and set(trials["status"]) == {"completed"}
    assert set(trials["attempts"]) == {1}  # trained once each, by the first driver alone
    assert holder(engine, queries.find_study(engine, "leased").id) is None


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
# On PostgreSQL: the lease's SQL is checked on both databases above, and a real launch on
# SQLite meets a held lease in the test before.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_killed_drivers_lease_is_taken_over_and_resume_finishes(
    tmp_path: Path, db_url: str, ray_address: str
) -> None:
    path = lease_spec(tmp_path, "killed-lease")
    engine = open_engine(db_url, create=True)
    process = launch_process(path, db_url, ray_address)
    wait_for_completed(engine, "killed-lease", 2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    study = queries.find_study(engine, "killed-lease").id
    left = holder(engine, study)
    assert left is not None and left.pid == process.pid  # it could not release it
    outcome = resume("killed-lease", engine, QUIET)  # at once: its process is gone
    assert outcome.status == "completed"
    trials = queries.trials(engine, study="killed-lease")
    assert len(trials) == 14 and set(trials["status"]) == {"completed"}
    assert holder(engine, study) is None


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_driver_whose_lease_is_taken_over_stops_and_leaves_the_study(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if it had stalled past the expiry and another driver took the study: its next
    renewal finds the row another's, Tune's run stops, and it writes nothing more (the
    statuses are the new driver's to keep)."""
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0.2)
    engine = open_engine(sqlite_url, create=True)
    taken = threading.Event()

    def take_over() -> None:
        wait_for_completed(engine, "taken", 1)
        study = queries.find_study(engine, "taken").id
        set_holder(engine, study, token="new-driver", host="elsewhere", pid=4242)
        taken.set()

    thread = threading.Thread(target=take_over, daemon=True)
    thread.start()
    with pytest.raises(LeaseLost, match=r"'taken' was taken over by another driver \(host else"):
        launch(load_spec(lease_spec(tmp_path, "taken")), engine, QUIET)
    thread.join(timeout=10)
    assert taken.is_set()
    study = queries.find_study(engine, "taken")
    assert study.status == "running"  # not marked interrupted: it is the new driver's
    assert "interrupted" not in set(queries.trials(engine, study="taken")["status"])
    kept = holder(engine, study.id)
    assert kept is not None and kept.pid == 4242  # its row left to its holder
