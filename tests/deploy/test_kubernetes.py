"""The Kubernetes manifests of deploy/kubernetes, checked without a cluster (none is reachable
from CI): the built-in kinds against the Kubernetes API's schemas (kubernetes-validate,
strict: an unknown field fails), the KubeRay kinds against the JSON schema written from
KubeRay's API types (deploy/kubernetes/schemas/) and their pod templates against Kubernetes'
PodTemplateSpec, and what must agree with the rest of the repository: the commands the
containers and the RayJob run (parsed by the real command line), the spec (parsed by the
spec parser), the images (docker/), Secret keys, Service selectors and ports."""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from gradsweep.spec import load_spec, parse_spec
from gradsweep.storage.engine import parse_url, resolve_url
from tests.docs_blocks import ROOT, blocks, commands
from tests.test_docs import parse_command

DEPLOY = ROOT / "deploy" / "kubernetes"
DOCKER = ROOT / "docker"
# the oldest and the newest Kubernetes the manifests are checked against (both are shipped
# by every kubernetes-validate the dev extra allows)
KUBERNETES_VERSIONS = ("1.30", "1.34")
# applied by hand, not by kubectl apply -k: the Secrets (created with generated values) and
# the RayJob (one per study)
OUTSIDE_KUSTOMIZATION = {"secrets.example.yaml", "rayjob.yaml"}
KUBERAY_GROUP = "ray.io/v1"
NAMESPACE = "gradsweep"


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) of every object of every manifest."""
    return [
        (path.name, doc)
        for path in manifest_files()
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


DOCS = documents()


def objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in objects(kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def ident(file_and_doc: tuple[str, dict[str, Any]]) -> str:
    file, doc = file_and_doc
    return f"{file}:{doc['kind']}/{doc['metadata']['name']}"


BUILTIN = [pytest.param(d, id=ident(d)) for d in DOCS if d[1]["apiVersion"] != KUBERAY_GROUP]
KUBERAY = [pytest.param(d, id=ident(d)) for d in DOCS if d[1]["apiVersion"] == KUBERAY_GROUP]


# -- the objects' pod templates and containers, whatever their kind -----------------------


def pod_templates(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod template) of a workload or a KubeRay object."""
    spec = doc.get("spec", {})
    if doc["kind"] in ("Deployment", "StatefulSet"):
        yield "template", spec["template"]
    elif doc["kind"] == "RayCluster":
        yield from ray_cluster_templates(spec)
    elif doc["kind"] == "RayJob":
        if "submitterPodTemplate" in spec:
            yield "submitter", spec["submitterPodTemplate"]
        if "rayClusterSpec" in spec:
            yield from ray_cluster_templates(spec["rayClusterSpec"])


def ray_cluster_templates(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "head", spec["headGroupSpec"]["template"]
    for group in spec.get("workerGroupSpecs", []):
        yield f"worker-{group['groupName']}", group["template"]


def containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, container, pod spec) of every container and init container."""
    for where, template in pod_templates(doc):
        pod = template["spec"]
        for field in ("initContainers", "containers"):
            for container in pod.get(field, []):
                yield f"{doc['metadata']['name']}/{where}/{container['name']}", container, pod


def all_containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [found for _, doc in DOCS for found in containers(doc)]


def env_value_from(container: dict[str, Any], name: str) -> dict[str, Any]:
    [var] = [v for v in container.get("env", []) if v["name"] == name]
    return var["valueFrom"]


def env_value(container: dict[str, Any], name: str) -> str:
    [var] = [v for v in container.get("env", []) if v["name"] == name]
    return var["value"]


# -- the schemas ---------------------------------------------------------------------------


def kuberay_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DEPLOY / "schemas" / "kuberay-v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_kuberay(doc: dict[str, Any], version: str) -> None:
    """The object against the KubeRay schema, each of its pod templates against Kubernetes'
    (wrapped as a core/v1 PodTemplate, whose ``template`` is a PodTemplateSpec)."""
    kuberay_validator().validate(doc)
    for where, template in pod_templates(doc):
        wrapped = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{doc['metadata']['name']}-{where}"},
            "template": template,
        }
        kubernetes_validate.validate(wrapped, version, strict=True)


def test_the_manifests_are_all_there_and_kustomize_lists_them() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == NAMESPACE
    listed = set(kustomization["resources"])
    assert all((DEPLOY / name).is_file() for name in listed), listed
    assert listed | OUTSIDE_KUSTOMIZATION == {p.name for p in manifest_files()}
    assert not listed & OUTSIDE_KUSTOMIZATION
    kinds = {doc["kind"] for _, doc in DOCS}
    assert {"Namespace", "Secret", "ConfigMap", "Service", "StatefulSet", "Deployment",
            "RayCluster", "RayJob"} <= kinds  # fmt: skip
    # kustomize's images entry renames the images the manifests name (a registry's copy)
    named = {c["image"].split(":")[0] for _, c, _ in all_containers()}
    assert {entry["name"] for entry in kustomization["images"]} <= named


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("file_and_doc", BUILTIN)
def test_builtin_kinds_follow_the_kubernetes_schemas(
    file_and_doc: tuple[str, dict[str, Any]], version: str
) -> None:
    kubernetes_validate.validate(file_and_doc[1], version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("file_and_doc", KUBERAY)
def test_kuberay_kinds_follow_their_schema(
    file_and_doc: tuple[str, dict[str, Any]], version: str
) -> None:
    validate_kuberay(file_and_doc[1], version)


def worker_group(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["workerGroupSpecs"][0]


def head_container(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


# (kind, name, the mapping a field is in, the field, a misspelling, a value of a wrong type):
# a field of a built-in kind, one of a KubeRay kind, one of a pod template in a KubeRay kind
FIELDS = {
    "statefulset": ("StatefulSet", "postgres", lambda d: d["spec"], "replicas", "replcas", "two"),
    "raycluster": ("RayCluster", "gradsweep", worker_group, "replicas", "replcas", "two"),
    "raycluster-pod": ("RayCluster", "gradsweep", head_container, "image", "imgae", 2),
}


def validate_any(doc: dict[str, Any]) -> None:
    for version in KUBERNETES_VERSIONS:
        if doc["apiVersion"] == KUBERAY_GROUP:
            validate_kuberay(doc, version)
        else:
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("case", FIELDS)
@pytest.mark.parametrize("breakage", ["misspelt", "wrong type"])
def test_validation_catches_a_misspelt_field_and_a_wrong_type(case: str, breakage: str) -> None:
    kind, name, holder, field, misspelt, wrong = FIELDS[case]
    doc = copy.deepcopy(one(kind, name))
    validate_any(doc)  # as it is: valid
    mapping = holder(doc)
    if breakage == "misspelt":
        mapping[misspelt] = mapping.pop(field)
    else:
        mapping[field] = wrong
    with pytest.raises(jsonschema.ValidationError) as caught:
        validate_any(doc)
    said = caught.value.message
    if breakage == "misspelt":
        assert f"'{misspelt}' was unexpected" in said, said
    else:
        assert said.startswith(f"{wrong!r} is not of type"), said


# -- one namespace, consistent labels -------------------------------------------------------

PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"


def test_everything_is_in_one_namespace_with_consistent_labels() -> None:
    for file, doc in DOCS:
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            assert meta["name"] == NAMESPACE
        else:
            assert meta.get("namespace") == NAMESPACE, (file, meta["name"])
        assert meta["labels"][PART_OF] == "gradsweep", (file, meta["name"])
        assert meta["labels"][COMPONENT], (file, meta["name"])
        for where, template in pod_templates(doc):
            labels = template["metadata"]["labels"]
            assert labels[PART_OF] == "gradsweep" and labels[COMPONENT], (file, where)
    components = [t["metadata"]["labels"][COMPONENT] for _, d in DOCS for _, t in pod_templates(d)]
    assert len(components) == len(set(components)), components  # each set of pods its own


# -- Services, selectors, ports ---------------------------------------------------------------


def workloads() -> list[dict[str, Any]]:
    return objects("Deployment") + objects("StatefulSet")


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def test_services_select_their_pods_on_their_ports() -> None:
    for workload in workloads():  # a workload's selector picks its own pods
        assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels(workload).items()
    for service in objects("Service"):
        name, selector = service["metadata"]["name"], service["spec"]["selector"]
        served = [w for w in workloads() if selector.items() <= pod_labels(w).items()]
        assert len(served) == 1, (name, [w["metadata"]["name"] for w in served])
        ports = {
            p["name"]: p["containerPort"]
            for c in served[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            number = ports[target] if isinstance(target, str) else target
            assert number in ports.values(), (name, port)
            assert number == port["port"], (name, port)
    # the StatefulSet's governing Service exists and is headless
    postgres = one("StatefulSet", "postgres")
    governing = one("Service", postgres["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"


def test_container_ports_are_the_dashboards_and_postgres() -> None:
    dashboard = one("Deployment", "gradsweep-dashboard")["spec"]["template"]["spec"]
    [container] = dashboard["containers"]
    command = container["command"]
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable through the Service
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ("readinessProbe", "livenessProbe"):  # a page would answer 403 without the token
        assert container[probe]["tcpSocket"]["port"] == container["ports"][0]["name"]
    [postgres] = one("StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in postgres["ports"]] == [5432]
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    assert postgres["image"] == compose["postgres"]["image"]
    assert "8050:8050" in compose["dashboard"]["ports"] and port == 8050


def test_every_container_sets_resources() -> None:
    for where, container, _ in all_containers():
        resources = container["resources"]
        assert resources["requests"] and resources["limits"], where
        assert {"cpu", "memory"} <= resources["limits"].keys(), where


# -- Secrets and ConfigMaps that are referenced exist -------------------------------------------


def secret_keys() -> dict[str, set[str]]:
    return {s["metadata"]["name"]: set(s["stringData"]) for s in objects("Secret")}


def test_secret_and_configmap_references_exist() -> None:
    keys = secret_keys()
    claims = {
        t["metadata"]["name"]
        for w in workloads()
        for t in w["spec"].get("volumeClaimTemplates", [])
    }
    referenced = set()
    for where, container, pod in all_containers():
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in keys.get(ref["name"], set()), (where, ref)
                referenced.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                config_map = one("ConfigMap", volume["configMap"]["name"])
                for item in volume["configMap"].get("items", []):
                    assert item["key"] in config_map["data"], (where, item)
        mounted = {v["name"] for v in pod.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in mounted | claims, (where, mount)
    assert referenced == {(name, key) for name, ks in keys.items() for key in ks}  # none unused


def test_the_docs_create_the_secrets_the_manifests_read() -> None:
    """docs/cluster.md creates the Secrets with kubectl create secret generic: the same names
    and keys as secrets.example.yaml."""
    created: dict[str, set[str]] = {}
    for block in blocks(ROOT / "docs" / "cluster.md"):
        for line in commands(block.text):
            argv = shlex.split(line)
            if argv[:2] == ["kubectl", "-n"] and argv[3:6] == ["create", "secret", "generic"]:
                assert argv[2] == NAMESPACE
                created[argv[6]] = {
                    a.split("=", 2)[1] for a in argv[7:] if a.startswith("--from-literal=")
                }
    assert created == secret_keys()


def test_the_database_url_is_postgres_as_deployed() -> None:
    db = one("Secret", "gradsweep-db")
    url = make_url(db["stringData"]["GRADSWEEP_DB"])
    parse_url(str(url))  # a driver gradsweep accepts
    [postgres] = one("StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"]
    service = one("Service", "postgres")
    assert url.get_backend_name() == "postgresql"
    assert url.username == env_value(postgres, "POSTGRES_USER")
    assert url.database == env_value(postgres, "POSTGRES_DB")
    assert url.password == db["stringData"]["POSTGRES_PASSWORD"]
    assert env_value_from(postgres, "POSTGRES_PASSWORD")["secretKeyRef"] == {
        "name": "gradsweep-db",
        "key": "POSTGRES_PASSWORD",
    }
    assert url.host == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"]


# -- the commands: parsed by the real command line ----------------------------------------------


def test_containers_that_run_gradsweep_run_real_commands() -> None:
    ran = []
    for where, container, _ in all_containers():
        command = container.get("command", []) + container.get("args", [])
        defined = {v["name"] for v in container.get("env", [])}
        for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(command)):
            assert name in defined, (where, name)  # the kubelet leaves an undefined one as is
        if command[:1] == ["gradsweep"]:
            parse_command(command[1:])
            ran.append(command[1])
    assert sorted(ran) == ["dashboard", "db"]


def test_the_rayjob_launches_the_mounted_spec_on_the_cluster_with_the_secret_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job, cluster = one("RayJob"), one("RayCluster")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    entrypoint = job["spec"]["entrypoint"]
    # KubeRay hands the entrypoint to bash as a string: a $(VAR) there is no Kubernetes
    # reference, and bash would run it as a command
    assert "$(" not in entrypoint
    argv = shlex.split(entrypoint)
    assert argv[:2] == ["gradsweep", "launch"]
    parse_command(argv[1:])
    # the spec: the ConfigMap's key, where the head mounts it (the driver runs on the head)
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    [container] = head["containers"]
    [volume] = [v for v in head["volumes"] if "configMap" in v]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    config_map = one("ConfigMap", volume["configMap"]["name"])
    assert argv[2] in {f"{mount['mountPath']}/{key}" for key in config_map["data"]}
    # the cluster the job runs in, not a local Ray (launch's default)
    assert argv[argv.index("--ray-address") + 1] == "auto"
    # the database: no --db (its URL, password included, would be stored with the Ray job),
    # so launch reads $GRADSWEEP_DB, which the head has from the Secret
    assert "--db" not in argv
    ref = env_value_from(container, "GRADSWEEP_DB")["secretKeyRef"]
    url = one("Secret", ref["name"])["stringData"][ref["key"]]
    monkeypatch.setenv("GRADSWEEP_DB", url)
    assert resolve_url(None) == url
    assert "--quiet" in argv  # no live display in a job's log


def test_the_spec_configmap_is_a_real_spec(tmp_path: Path) -> None:
    text = one("ConfigMap", "gradsweep-spec")["data"]["spec.yaml"]
    assert text == (ROOT / "configs" / "toy-demo.yaml").read_text()  # verbatim: no drift
    assert parse_spec(text).study == "toy-demo"
    (tmp_path / "spec.yaml").write_text(text)
    assert load_spec(tmp_path / "spec.yaml").study == "toy-demo"  # its problem built


# -- the Ray cluster: images, versions, groups ------------------------------------------------


def dockerfile_arg(path: Path, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", path.read_text(), re.M)
    assert match, (path, name)
    return match.group(1)


def built_tag(path: Path) -> str:
    """The tag a Dockerfile's header says to build it as (docker build … -t TAG .)."""
    match = re.search(r"^# Build .*docker build -f docker/\S+ -t (\S+) \.$", path.read_text(), re.M)
    assert match, path
    return match.group(1)


def test_images_are_the_ones_docker_builds() -> None:
    cpu, cuda = built_tag(DOCKER / "Dockerfile"), built_tag(DOCKER / "Dockerfile.cuda")
    assert (cpu, cuda) == ("gradsweep:cpu", "gradsweep:cuda")
    images = {}
    for where, container, _ in all_containers():
        if not where.startswith("postgres/"):
            images[where] = container["image"]
    assert set(images.values()) == {cpu, cuda}, images
    on_cuda = [where for where, image in images.items() if image == cuda]
    assert on_cuda == ["gradsweep/worker-gpu/ray-worker"]
    cluster = one("RayCluster")
    for path in (DOCKER / "Dockerfile", DOCKER / "Dockerfile.cuda"):
        assert cluster["spec"]["rayVersion"] == dockerfile_arg(path, "RAY_VERSION")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_ray_cluster_has_a_head_and_cpu_and_gpu_workers() -> None:
    spec = one("RayCluster")["spec"]
    # token authentication needs Ray 2.52.0 or later (KubeRay's validation.go)
    assert spec["authOptions"]["mode"] == "token"
    assert version_tuple(spec["rayVersion"]) >= (2, 52, 0)
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # drivers only
    for where, container, _ in containers(one("RayCluster")):
        # Ray sizes a node from its limits: what is requested is what Ray hands out
        assert container["resources"]["requests"] == container["resources"]["limits"], where
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for name, group in groups.items():
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
        [container] = group["template"]["spec"]["containers"]
        # workers neither need nor get the database (docs/cluster.md: one writer, the driver)
        assert "GRADSWEEP_DB" not in {v["name"] for v in container.get("env", [])}, name
    gpu = groups["gpu"]["template"]["spec"]
    [gpu_container] = gpu["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu[
        "tolerations"
    ]
    [cpu_container] = groups["cpu"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" not in cpu_container["resources"]["limits"]


def test_the_images_have_what_kuberay_needs() -> None:
    for path in (DOCKER / "Dockerfile", DOCKER / "Dockerfile.cuda"):
        assert re.search(r"ray\[[^\]]*\bdefault\b[^\]]*\]==", path.read_text()), path
