"""compose/kubernetes/: the objects parse, the collector configs they mount pass `meshscope check-config`,
and the Deployment (receivers, UI) and DaemonSet (tailing /var/log/pods) fit together."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose.stack import COMPOSE

MANIFEST = COMPOSE / "kubernetes" / "meshscope.yaml"


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    documents = [document for document in yaml.safe_load_all(MANIFEST.read_text()) if document]
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= set(document), document
    return {(document["kind"], document["metadata"]["name"]): document for document in documents}


def container(kind: str, name: str) -> dict[str, Any]:
    (only,) = objects()[(kind, name)]["spec"]["template"]["spec"]["containers"]
    return only


def mounted_config(kind: str, name: str) -> str:
    mount = next(m for m in container(kind, name)["volumeMounts"] if m["mountPath"] == "/etc/meshscope/meshscope.yaml")
    return objects()[("ConfigMap", "meshscope")]["data"][mount["subPath"]]


@pytest.mark.parametrize(("kind", "name"), [("Deployment", "meshscope"), ("DaemonSet", "meshscope-node")])
def test_the_config_each_workload_mounts_passes_check_config(kind: str, name: str, tmp_path: Path) -> None:
    config = tmp_path / "meshscope.yaml"
    config.write_text(mounted_config(kind, name))
    assert container(kind, name)["args"] == ["run", "-c", "/etc/meshscope/meshscope.yaml"]
    meshscope = Path(sys.executable).with_name("meshscope")
    result = subprocess.run([str(meshscope), "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_selectors_match_their_pods_and_every_object_is_in_the_namespace() -> None:
    found = objects()
    for (kind, name), document in found.items():
        if kind != "Namespace":
            assert document["metadata"]["namespace"] == "meshscope", (kind, name)
        if kind in {"Deployment", "DaemonSet"}:
            labels = document["spec"]["template"]["metadata"]["labels"]
            assert document["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = found[("Service", "meshscope")]["spec"]
    assert (
        service["selector"].items()
        <= found[("Deployment", "meshscope")]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_the_service_exposes_every_port_the_deployment_listens_on() -> None:
    service_ports = {port["port"] for port in objects()[("Service", "meshscope")]["spec"]["ports"]}
    container_ports = {port["containerPort"] for port in container("Deployment", "meshscope")["ports"]}
    config = yaml.safe_load(mounted_config("Deployment", "meshscope"))
    receivers = config["receivers"]
    configured = {
        int(endpoint.rsplit(":", 1)[1])
        for endpoint in (
            receivers["als"]["endpoint"],
            receivers["otlp"]["grpc"]["endpoint"],
            receivers["otlp"]["http"]["endpoint"],
            receivers["zipkin"]["endpoint"],
            config["exporters"]["prometheus"]["endpoint"],
            config["graph"]["endpoint"],
        )
    }
    assert service_ports == container_ports == configured


def test_the_daemonset_tails_the_pod_logs_it_mounts_from_the_node_and_nothing_else() -> None:
    config = yaml.safe_load(mounted_config("DaemonSet", "meshscope-node"))
    assert config["receivers"]["filelog"]["include"] == ["/var/log/pods/*/istio-proxy/*.log"]
    assert all(config["receivers"][name]["enabled"] is False for name in ("als", "zipkin"))
    spec = objects()[("DaemonSet", "meshscope-node")]["spec"]["template"]["spec"]
    host_paths = {volume["name"]: volume["hostPath"]["path"] for volume in spec["volumes"] if "hostPath" in volume}
    mounts = {m["name"]: m for m in container("DaemonSet", "meshscope-node")["volumeMounts"]}
    assert host_paths["pods"] == mounts["pods"]["mountPath"] == "/var/log/pods" and mounts["pods"]["readOnly"]
    assert Path(config["receivers"]["filelog"]["checkpoint_file"]).parent == Path(mounts["state"]["mountPath"])


def test_both_workloads_run_as_the_images_non_root_user_outside_the_mesh() -> None:
    for kind, name in (("Deployment", "meshscope"), ("DaemonSet", "meshscope-node")):
        pod = objects()[(kind, name)]["spec"]["template"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
