"""Ray processes left behind by a killed launch, reaped by the next one.

A launch that starts its own local Ray records the processes of that Ray session (the
driver's descendants: GCS, raylet, the agents, workers) in a small file. When the driver
ends normally, ``ray.shutdown`` stops them and the file goes. A driver killed with
SIGKILL leaves some behind (Ray's dashboard and runtime-env agents outlive their raylet);
the next launch on the machine finds the file of a driver that is gone and ends the
processes it lists that still run, recognised by their start time so that a reused
process id is never touched. Linux only (``/proc``); elsewhere nothing is recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from pathlib import Path

RECORDS = Path(tempfile.gettempdir()) / "gradsweep-ray"
PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, else None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid → start time."""
    parents: dict[int, int] = {}
    starts: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)], starts[int(entry.name)] = stat
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = starts[pid]
                frontier.append(pid)
    return found


def record_session() -> Path | None:
    """Write this driver's Ray processes down; returns the file (None off Linux)."""
    if not PROC.is_dir():
        return None
    me = os.getpid()
    own = _stat(me)
    if own is None:
        return None
    RECORDS.mkdir(exist_ok=True)
    path = RECORDS / f"{me}.json"
    payload = {"driver": [me, own[1]], "processes": descendants(me)}
    path.write_text(json.dumps(payload))
    return path


def forget_session(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def reap_orphans() -> int:
    """End the recorded processes of drivers that are gone; returns how many."""
    if not RECORDS.is_dir():
        return 0
    ended = 0
    for path in RECORDS.glob("*.json"):
        try:
            payload = json.loads(path.read_text())
            driver, driver_start = payload["driver"]
            processes = {int(pid): int(start) for pid, start in payload["processes"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            forget_session(path)
            continue
        alive = _stat(int(driver))
        if alive is not None and alive[1] == driver_start:
            continue  # its driver still runs
        for pid, start in processes.items():
            stat = _stat(pid)
            if stat is not None and stat[1] == start:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    ended += 1
        forget_session(path)
    return ended
