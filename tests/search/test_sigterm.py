"""SIGTERM stops a launch as Ctrl-C does: the study left ``interrupted`` and resumable,
one line on stderr, no Ray fatal-signal dump, exit 130 (docs/reliability.md)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from gradsweep.search.launch import LaunchOptions, resume, sigterm_as_ctrl_c
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.lease import holder
from tests.search.test_faults import assert_exactly_once, fault_spec
from tests.search.test_launch import launch_process, wait_for_completed


def test_sigterm_is_ctrl_c_within_the_block_only() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_as_ctrl_c(), pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # Python's SIGINT handler: KeyboardInterrupt
        signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
        with sigterm_as_ctrl_c():  # Tune's Ctrl-C handler, in a run, is called the same way
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.usefixtures("ray_session")
def test_a_launch_leaves_ctrl_c_as_it_found_it(tmp_path: Path, sqlite_url: str) -> None:
    """Each Tune run installs its Ctrl-C handler and leaves it: a Ctrl-C (or SIGTERM)
    between two phases would only have set the finished run's flag."""
    from gradsweep.search.launch import launch
    from gradsweep.spec import load_spec
    from tests.search.specs import write_spec

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        path = write_spec(tmp_path, "handlers", arms={"grid": {"resolution": 2}})
        launch(load_spec(path), open_engine(sqlite_url, create=True), LaunchOptions(quiet=True))
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_sigterm_leaves_the_study_interrupted_and_resume_finishes(
    tmp_path: Path, sqlite_url: str, ray_address: str
) -> None:
    engine = open_engine(sqlite_url, create=True)
    process = launch_process(fault_spec(tmp_path, "terminated"), sqlite_url, ray_address)
    wait_for_completed(engine, "terminated", 2)  # and two more running
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted"]  # no "*** SIGTERM received"
    assert "resume with: gradsweep resume terminated" in out
    study = queries.find_study(engine, "terminated")
    assert study.status == "interrupted"
    statuses = queries.trials(engine, study="terminated")["status"]
    assert "running" not in set(statuses) and "interrupted" in set(statuses)
    assert holder(engine, study.id) is None  # its lease released: resume may start at once
    assert resume("terminated", engine, LaunchOptions(quiet=True)).status == "completed"
    assert_exactly_once(engine, "terminated")
