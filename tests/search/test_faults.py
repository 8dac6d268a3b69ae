"""Faults during a running study, each on a real study: connections terminated, the server
restarted, a worker killed, the disk full, the dashboard polled throughout. Whatever
happens, every planned trial ends completed exactly once, with each evaluation once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from werkzeug.serving import make_server

from gradsweep.dashboards.app import create_app
from gradsweep.search.launch import LaunchOptions, launch, resume
from gradsweep.spec import load_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.errors import StorageError
from tests.search.specs import write_spec
from tests.search.test_launch import launch_process, wait_for_completed

pytestmark = [pytest.mark.usefixtures("ray_session"), pytest.mark.slow]

QUIET = LaunchOptions(quiet=True)
STEPS = 160  # 400 samples, batch 50: an evaluation every 8 steps → 21 per trial


def fault_spec(folder: Path, name: str, **overrides: object) -> Path:
    """14 unpacked trials (a grid of 7 weightings × 2 seeds), so faults land between
    trials and in the middle of them."""
    fields: dict[str, object] = {
        "budget": {"steps": STEPS, "trace_every": 4},
        "seeds": [0, 1],
        "arms": {"grid": {"resolution": 3}},
        "resources": {"pack": 1},
        "max_failures": 2,
    }
    return write_spec(folder, name, **{**fields, **overrides})


def assert_exactly_once(engine: Engine, study: str, planned: int = 14) -> None:
    trials = queries.trials(engine, study=study)
    assert len(trials) == trials["key"].nunique() == planned
    assert set(trials["status"]) == {"completed"}
    curves = queries.curves(engine, study)
    assert not curves.duplicated(["key", "epoch", "task"]).any()
    assert (curves.groupby("key").size() == 3 * (STEPS // 8 + 1)).all()  # every evaluation
    traces = queries.weight_traces(engine, study)
    assert (traces.groupby("key").size() == STEPS // 4).all()


def in_background(
    work: Callable[[threading.Event], None],
) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=work, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_terminated_connections_are_reopened_and_nothing_is_lost(tmp_path: Path, postgres) -> None:  # type: ignore[no-untyped-def]
    if postgres is None:
        pytest.skip("PostgreSQL not reachable")
    url = postgres.new_database()
    database = url.rsplit("/", 1)[1]
    killed: list[int] = []

    def terminate(stop: threading.Event) -> None:
        with postgres._admin() as admin:
            while not stop.wait(0.4):
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                killed.extend(1 for row in rows if row[0])

    engine = open_engine(url)
    stop, thread = in_background(terminate)
    try:
        outcome = launch(load_spec(fault_spec(tmp_path, "terminated")), engine, QUIET)
    finally:
        stop.set()
        thread.join()
    assert outcome.status == "completed", outcome
    assert len(killed) >= 3  # the study's connections really were cut, repeatedly
    assert_exactly_once(engine, "terminated")


def test_a_restarted_server_is_waited_for_or_resume_finishes(
    tmp_path: Path,
    postgres,
    ray_address: str,  # type: ignore[no-untyped-def]
) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL not reachable")
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster and root")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    url = postgres.new_database()
    engine = open_engine(url)
    process = launch_process(fault_spec(tmp_path, "restarted"), url, ray_address)
    wait_for_completed(engine, "restarted", 2)
    restart = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]
    subprocess.run(restart, check=True, capture_output=True, timeout=120)
    out, err = process.communicate(timeout=300)
    if process.returncode != 0:  # it gave up: one line, and resume finishes the study
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert resume("restarted", engine, QUIET).status == "completed"
    else:
        assert "restarted (id" in out and "completed, 14/14" in out
    assert_exactly_once(engine, "restarted")


def worker_processes() -> list[int]:
    """Ray's worker processes running a trial (``ray::ImplicitFunc.train``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if command.startswith("ray::ImplicitFunc"):
                found.append(int(entry.name))
    return found


def test_a_killed_worker_is_retried_and_recorded_once(tmp_path: Path, sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    victims: list[int] = []

    def kill_one(stop: threading.Event) -> None:
        while not stop.wait(0.2) and not victims:
            try:
                running = queries.trials(engine, study="killed-worker", status="running")
            except StorageError:  # not created yet
                continue
            if len(running) and running["node"].notna().any():
                time.sleep(0.5)  # into the trial's training
                for pid in worker_processes()[:1]:
                    os.kill(pid, signal.SIGKILL)
                    victims.append(pid)

    stop, thread = in_background(kill_one)
    try:
        outcome = launch(load_spec(fault_spec(tmp_path, "killed-worker")), engine, QUIET)
    finally:
        stop.set()
        thread.join()
    assert victims and outcome.status == "completed", outcome
    trials = queries.trials(engine, study="killed-worker")
    assert trials["attempts"].max() >= 2  # the killed worker's trial ran again
    assert_exactly_once(engine, "killed-worker")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs, where this machine lets the tests mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write into ``folder`` until its disk is full."""
    filler = folder / "filler"
    handle = filler.open("wb", buffering=0)
    try:
        while handle.write(b"\0" * 4096):
            pass
    except OSError:  # no space left: what we came for
        pass
    finally:
        handle.close()
    return filler


def test_a_full_disk_stops_the_study_in_one_line_and_resume_finishes(
    tmp_path: Path, small_disk: Path, ray_address: str
) -> None:
    url = f"sqlite:///{small_disk / 'results.db'}"
    engine = open_engine(url)
    process = launch_process(fault_spec(tmp_path, "full-disk"), url, ray_address)
    wait_for_completed(engine, "full-disk", 2)
    filler = fill(small_disk)
    out, err = process.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert process.returncode == 2 and len(lines) == 1, (process.returncode, err)
    assert lines[0] == "error: cannot write the results: database or disk is full"
    filler.unlink()
    assert resume("full-disk", engine, QUIET).status == "completed"
    assert_exactly_once(engine, "full-disk")


def test_the_dashboard_polled_while_a_study_writes_never_errs(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(sqlite_url)
    spec = load_spec(fault_spec(tmp_path, "polled", arms={"grid": {"resolution": 2}}))
    first = fault_spec(tmp_path, "first", arms={"static": {"weights": [[1, 1, 1]]}})
    launch(load_spec(first), engine, QUIET)  # a database with a study, for the app to open
    app = create_app(open_engine(sqlite_url, read_only=True))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    statuses: list[int] = []
    refresh = next(k for k in app.callback_map if "simplex.figure" in k)

    outputs = [
        dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
        for part in refresh.strip(".").split("...")
    ]

    def poll(stop: threading.Event) -> None:
        while not stop.wait(0.1):  # from the moment the study exists
            try:
                queries.find_study(engine, "polled")
                break
            except StorageError:
                continue
        ticks = 0
        while not stop.is_set():
            ticks += 1
            for path in ("/", "/study/polled"):
                with urllib.request.urlopen(base + path, timeout=60) as response:
                    statuses.append(response.status)
            body = {
                "output": refresh,
                "outputs": outputs,
                "inputs": [
                    {"id": "refresh", "property": "n_intervals", "value": ticks},
                    {"id": "url", "property": "pathname", "value": "/study/polled"},
                ],
                "state": [{"id": "signature", "property": "data", "value": None}],
                "changedPropIds": ["refresh.n_intervals"],
            }
            request = urllib.request.Request(
                base + "/_dash-update-component",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)

    stop, thread = in_background(poll)
    try:
        with caplog.at_level("WARNING", logger="gradsweep.dashboards"):
            assert launch(spec, engine, QUIET).status == "completed"
    finally:
        stop.set()
        thread.join()
        server.shutdown()
    assert len(statuses) >= 20 and set(statuses) <= {200, 204}, statuses
    assert not [r for r in caplog.records if r.name.startswith("gradsweep.dashboards")]
    assert_exactly_once(engine, "polled", planned=6)  # 3 weightings × 2 seeds
