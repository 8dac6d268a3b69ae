"""The Docker images and the compose file, checked without a Docker engine: hadolint on the
Dockerfiles, the compose file against the Compose specification's schema, and the commands
the containers run against the ones tests/search/test_cluster.py runs on a real cluster."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).parents[1] / "docker"
BIN = Path(sys.executable).parent
DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "Dockerfile.cuda"]


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} missing: it is in the dev extra (pip install -e '.[dev]')")
    return str(path)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    run = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    run = validate(DOCKER / "compose.yaml")
    assert run.returncode == 0, run.stdout + run.stderr
    broken = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    broken["services"]["ray-head"]["shm_sise"] = "2gb"  # a typo the schema must catch
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert validate(tmp_path / "broken.yaml").returncode != 0


def test_containers_run_the_commands_the_cluster_test_runs() -> None:
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    head, worker = services["ray-head"]["command"], services["ray-worker"]["command"]
    assert head[:3] == ["ray", "start", "--head"] and "--block" in head
    assert worker[:2] == ["ray", "start"] and "--address=ray-head:6379" in worker
    assert "--block" in worker
    launch = services["launch"]["command"]
    assert launch[:2] == ["gradsweep", "launch"] and "--ray-address" in launch
    for name in ("ray-head", "ray-worker", "ray-worker-gpu", "dashboard", "launch"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token" and "GRADSWEEP_DB" in env
    assert services["ray-worker"]["shm_size"] and services["ray-worker-gpu"]["shm_size"]
    gpu = services["ray-worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["postgres"]["healthcheck"]["test"]
    for name in ("ray-head", "ray-worker", "ray-worker-gpu", "launch"):  # they build problems
        assert "${DATA_DIR:-../data}:/data:ro" in services[name]["volumes"], name
    cluster_test = (Path(__file__).parent / "search" / "test_cluster.py").read_text()
    assert re.search(r'"start",\s*"--head"', cluster_test)
    assert re.search(r'"start",\s*"--address"', cluster_test)


def test_ray_torch_and_python_versions_agree_across_images() -> None:
    def arg(text: str, name: str) -> str:
        match = re.search(rf"^ARG {name}=(\S+)$", text, re.M)
        assert match, name
        return match.group(1)

    cpu, cuda = (path.read_text() for path in DOCKERFILES)
    assert arg(cpu, "RAY_VERSION") == arg(cuda, "RAY_VERSION")
    assert arg(cpu, "TORCH_VERSION") == arg(cuda, "TORCH_VERSION")
    assert re.search(r"^FROM python:3\.11\.", cpu, re.M)
    assert arg(cuda, "PYTHON_VERSION") == "3.11"
