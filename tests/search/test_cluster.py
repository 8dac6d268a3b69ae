"""A real two-node Ray cluster on this machine (`ray start --head` and `ray start --address`,
the commands the Docker images run), a study on it with PostgreSQL, and a node that dies."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import write_spec

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    head: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    worker_node: str


def alive_nodes(address: str, env: dict[str, str]) -> list[str]:
    script = (
        f"import ray, logging; ray.init(address={address!r}, logging_level=logging.ERROR);"
        "print(' '.join(n['NodeID'][:8] for n in ray.nodes() if n['Alive']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    return run.stdout.split() if run.returncode == 0 else []


def kill_node(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the node's whole process group (raylet, object store, its workers): a node
    that dies, not one that shuts down politely."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Head and worker with one CPU each, their own ports and an auth token of their own."""
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.getcwd(),
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    logs = tmp_path / "ray-logs"
    logs.mkdir()
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--num-cpus",
            "1",
            "--port",
            str(port),
            "--include-dashboard",
            "false",
            "--block",
        ],
        env=env,
        stdout=(logs / "head.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not alive_nodes(address, env):
            assert head.poll() is None and time.monotonic() < deadline, "the head did not start"
            time.sleep(1)
        head_nodes = set(alive_nodes(address, env))
        worker = subprocess.Popen(
            [RAY, "start", "--address", address, "--num-cpus", "1", "--block"],
            env=env,
            stdout=(logs / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the test can kill the node
        )
        while len(nodes := alive_nodes(address, env)) < 2:
            assert worker.poll() is None and time.monotonic() < deadline, "no worker node"
            time.sleep(1)
        (worker_node,) = set(nodes) - head_nodes
        yield Cluster(address, env, head, worker, worker_node)
    finally:
        if worker is not None:
            stop(worker)
        stop(head)


def wait_for(engine: Engine, study: str, condition, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition(queries.trials(engine, study=study)):
                return
        except Exception:
            pass  # the study may not exist yet
        time.sleep(0.3)
    raise AssertionError(f"{study}: condition not met in {timeout} s")


def test_study_on_two_nodes_survives_a_dying_worker(
    ray_cluster: Cluster, tmp_path: Path, postgres
) -> None:  # type: ignore[no-untyped-def]
    if postgres is None:
        pytest.skip("PostgreSQL not reachable")
    url = postgres.new_database()
    spec = write_spec(
        tmp_path,
        "cluster",
        budget={"steps": 1000},  # a pack of 2 takes seconds: the kill lands inside one
        seeds=[0, 1],
        arms={"grid": {"resolution": 3}},  # 7 points × 2 seeds
        resources={"pack": 2},  # packs of 2 (and 1): both nodes run several, one dies
        max_failures=2,
    )
    launch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradsweep.cli",
            "launch",
            str(spec),
            "--db",
            url,
            "--ray-address",
            ray_cluster.address,
            "--quiet",
        ],
        env=ray_cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = open_engine(url)
    on_worker = f"node {ray_cluster.worker_node})"

    def worker_busy(trials) -> bool:  # type: ignore[no-untyped-def]
        done_there = trials[
            (trials["status"] == "completed") & trials["node"].str.endswith(on_worker, na=False)
        ]
        running_there = trials[
            (trials["status"] == "running") & trials["node"].str.endswith(on_worker, na=False)
        ]
        # just started (a pack takes seconds): it cannot finish before the node dies
        age = pd.Timestamp.now(tz="UTC") - pd.to_datetime(running_there["started_at"], utc=True)
        return len(done_there) >= 1 and bool((age < pd.Timedelta(seconds=1)).any())

    wait_for(engine, "cluster", worker_busy)
    victim = queries.trials(engine, study="cluster")
    victim = victim[(victim["status"] == "running") & victim["node"].str.endswith(on_worker)]
    kill_node(ray_cluster.worker)  # the worker node dies with a pack on it
    out, err = launch.communicate(timeout=300)
    assert launch.returncode == 0, err
    trials = queries.trials(engine, study="cluster")
    assert len(trials) == trials["key"].nunique() == 14
    assert set(trials["status"]) == {"completed"}
    retried = trials.set_index("key").loc[victim["key"]]
    assert (retried["attempts"] >= 2).all() and not retried["node"].str.endswith(on_worker).any()
    assert trials["pack"].notna().sum() == 12  # per seed 2 + 2 + 2 packed, 1 alone
    nodes = {node.rsplit("node ", 1)[1] for node in trials["node"]}
    assert len(nodes) == 2  # trials ran on both nodes
    curves = queries.curves(engine, "cluster")
    assert not curves.duplicated(["key", "epoch", "task"]).any()
    assert len(curves) == 14 * len(curves["epoch"].unique()) * 3
