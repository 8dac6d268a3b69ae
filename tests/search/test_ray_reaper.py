"""A killed launch's processes are ended by the next launch, and nothing else is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradsweep.search import ray_reaper

DRIVER = """
import os, signal, subprocess, sys
from gradsweep.search.ray_reaper import record_session
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
record_session()
print(child.pid, flush=True)
if sys.argv[1] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)  # as kill -9: no cleanup; the child lives on
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the reaper reads /proc (Linux)")
def test_the_processes_of_a_killed_driver_are_ended_and_a_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_reaper, "RECORDS", tmp_path / "gradsweep-ray")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    killed = subprocess.run(
        [sys.executable, "-c", DRIVER, "killed"], capture_output=True, text=True, env=env
    )
    orphan = int(killed.stdout.split()[0])
    running = subprocess.Popen(
        [sys.executable, "-c", DRIVER + "\nimport time; time.sleep(600)\n", "running"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert running.stdout is not None
        kept = int(running.stdout.readline().split()[0])
        assert alive(orphan) and alive(kept)
        assert ray_reaper.reap_orphans() == 1
        deadline = time.monotonic() + 5
        while alive(orphan) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(orphan) and alive(kept)  # the live driver's child is not touched
        assert [p.stem for p in (tmp_path / "gradsweep-ray").glob("*.json")] == [str(running.pid)]
    finally:
        running.kill()
        for pid in (orphan, kept if "kept" in locals() else None):
            if pid is not None and alive(pid):
                os.kill(pid, 9)
