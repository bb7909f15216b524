"""Prometheus, Grafana, Fluentd and the collector as compose configures them: promtool and meshscope accept
their configs, and every host:port one file uses is a service and a port another file defines."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose import fluentconf
from tests.compose.stack import COMPOSE, envoy_services, render_envoy, resolved_compose, walk

from conftest import require_program

PROMETHEUS = COMPOSE / "prometheus" / "prometheus.yml"
COLLECTOR = COMPOSE / "meshscope" / "meshscope.yaml"
PROVISIONING = COMPOSE / "grafana" / "provisioning"
# Ports the third-party images listen on by their own defaults (their documentation, not our files).
IMAGE_PORTS = {
    "redis": {6379},
    "prometheus": {9090},
    "grafana": {3000},
    "jaeger": {4317, 4318, 16686, 14269},
    "zipkin": {9411},
    "elasticsearch": {9200},
    "kibana": {5601},
}


def host_mount(service: dict[str, Any], target: str) -> Path:
    for volume in service["volumes"]:
        source, mounted, *_ = str(volume).split(":")
        if mounted == target:
            return Path(source)
    raise AssertionError(f"nothing mounted at {target}")


def test_promtool_accepts_the_prometheus_config_with_the_rules_compose_mounts(tmp_path: Path) -> None:
    promtool = require_program("promtool", "prometheus")
    prometheus = resolved_compose("core")["services"]["prometheus"]
    config_target = next(arg.split("=", 1)[1] for arg in prometheus["command"] if arg.startswith("--config.file="))
    shutil.copy(host_mount(prometheus, config_target), tmp_path / "prometheus.yml")
    shutil.copytree(host_mount(prometheus, "/etc/prometheus/rules"), tmp_path / "rules")
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout + result.stderr


def test_prometheus_loads_both_rule_files_from_dashboards() -> None:
    rule_files = yaml.safe_load(PROMETHEUS.read_text())["rule_files"]
    rules = COMPOSE.parent / "dashboards" / "rules"
    assert sorted(Path(name).name for name in rule_files) == sorted(path.name for path in rules.glob("*.yaml"))


def test_prometheus_scrapes_the_collector_and_every_envoys_stats() -> None:
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]}
    envoy_job = jobs["envoy-stats"]
    assert envoy_job["metrics_path"] == "/stats/prometheus"
    targets = {target for config in envoy_job["static_configs"] for target in config["targets"]}
    assert targets == {f"{name}:15000" for name in envoy_services(resolved_compose("core"))}
    assert jobs["meshscope"]["static_configs"][0]["targets"] == ["meshscope:9464"]


def test_grafana_mounts_provisioning_and_dashboards_from_folders_holding_them() -> None:
    grafana = resolved_compose("core")["services"]["grafana"]
    provisioning = host_mount(grafana, "/etc/grafana/provisioning")
    assert provisioning.resolve() == PROVISIONING.resolve()
    provider = yaml.safe_load((provisioning / "dashboards" / "meshscope.yaml").read_text())["providers"][0]
    dashboards = host_mount(grafana, provider["options"]["path"])
    assert sorted(path.name for path in dashboards.glob("*.json")) == sorted(
        path.name for path in (COMPOSE.parent / "dashboards" / "json").glob("*.json")
    )
    assert len(list(dashboards.glob("*.json"))) >= 5


@pytest.mark.parametrize("overrides", [{}, {"MESHSCOPE_EXPORTERS__ZIPKIN__ENABLED": "true"}])
def test_the_collector_config_passes_check_config(overrides: dict[str, str], tmp_path: Path) -> None:
    meshscope = Path(sys.executable).with_name("meshscope")
    result = subprocess.run(
        [str(meshscope), "check-config", str(COLLECTOR)], capture_output=True, text=True, env={**overrides, "PATH": ""}
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr


def test_a_broken_collector_config_fails_check_config(tmp_path: Path) -> None:
    broken = tmp_path / "meshscope.yaml"
    broken.write_text(COLLECTOR.read_text().replace("  als:\n", "  alss:\n"))
    meshscope = Path(sys.executable).with_name("meshscope")
    result = subprocess.run([str(meshscope), "check-config", str(broken)], capture_output=True, text=True)
    assert result.returncode == 1 and "alss" in result.stdout + result.stderr


def test_the_collector_listens_on_all_interfaces_inside_its_container() -> None:
    config = yaml.safe_load(COLLECTOR.read_text())
    listening = [config["receivers"], config["exporters"]["prometheus"], config["graph"]]
    endpoints = [value for value in walk(listening, "endpoint") if not str(value).startswith("http")]
    assert endpoints and all(str(endpoint).startswith("0.0.0.0:") for endpoint in endpoints), endpoints


def listening_ports(tmp_path: Path) -> dict[str, set[int]]:
    """service -> the ports our own files make it listen on (plus the third-party images' defaults)."""
    services = resolved_compose("full")["services"]
    ports: dict[str, set[int]] = {name: set(IMAGE_PORTS.get(name, ())) for name in services}
    for name, service in envoy_services(resolved_compose("core")).items():
        document = render_envoy(service, tmp_path)
        listeners = document["static_resources"]["listeners"]
        ports[name] |= {listener["address"]["socket_address"]["port_value"] for listener in listeners}
        ports[name].add(document["admin"]["address"]["socket_address"]["port_value"])
    collector = yaml.safe_load(COLLECTOR.read_text())
    ports["meshscope"] |= {
        int(str(e).rsplit(":", 1)[1]) for e in walk(collector, "endpoint") if e.startswith("0.0.0.0")
    }
    app = (COMPOSE / "app" / "app.py").read_text()
    for name in services:
        if name.endswith("-app"):
            ports[name] |= {int(port) for port in re.findall(r'"PORT", "(\d+)"', app)}
    ports["fluentd"] |= {
        int(source.params["port"]) for source in _fluent_conf().all("source") if "port" in source.params
    }
    return ports


def _fluent_conf() -> fluentconf.Directive:
    return fluentconf.parse((COMPOSE / "fluentd" / "fluent.conf").read_text())


def used_addresses(tmp_path: Path) -> list[tuple[str, str, int]]:
    """(file, host, port) for every address a file of the stack connects to."""
    used: list[tuple[str, str, int]] = []
    services = resolved_compose("full")["services"]
    for name, service in envoy_services(resolved_compose("core")).items():
        for address in walk(render_envoy(service, tmp_path)["static_resources"]["clusters"], "socket_address"):
            used.append((f"envoy {name}", address["address"], address["port_value"]))
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    for target in walk(prometheus, "targets"):
        used += [("prometheus.yml", *_split(address)) for address in target]
    collector = yaml.safe_load(COLLECTOR.read_text())["exporters"]
    used += [("meshscope.yaml", *_split(collector[name]["endpoint"])) for name in ("otlp", "zipkin", "fluentforward")]
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "meshscope.yaml").read_text())["datasources"]
    used += [("grafana datasources", *_split(source["url"])) for source in datasources]
    for match in _fluent_conf().all("match"):
        if match.params["@type"] == "elasticsearch":
            used.append(("fluent.conf", match.params["host"], int(match.params["port"])))
    setup = services["logs-setup"]["environment"]
    used += [("logs-setup", *_split(setup[name])) for name in ("ELASTICSEARCH_URL", "KIBANA_URL")]
    used.append(("loadgen", *_split(services["loadgen"]["environment"]["TARGET"])))
    used += [
        ("kibana", *_split(url)) for url in yaml.safe_load(services["kibana"]["environment"]["ELASTICSEARCH_HOSTS"])
    ]
    for name, service in services.items():
        if name.endswith("-app"):
            used += [(name, service["environment"]["SIDECAR"], port) for port in (15001, 16379)]
    return used


def _split(address: str) -> tuple[str, int]:
    match = re.fullmatch(r"(?:https?://)?([\w.-]+):(\d+)(?:/.*)?", address)
    assert match, address
    return match[1], int(match[2])


def test_every_address_a_file_uses_is_a_service_and_a_port_another_file_defines(tmp_path: Path) -> None:
    ports = listening_ports(tmp_path)
    used = used_addresses(tmp_path)
    assert len(used) > 30
    unknown = [(where, host, port) for where, host, port in used if port not in ports.get(host, set())]
    assert unknown == []


def test_the_cross_reference_check_catches_a_port_nobody_listens_on(tmp_path: Path) -> None:
    ports = listening_ports(tmp_path)
    assert 9412 not in ports["meshscope"] and 9411 in ports["meshscope"]
    assert 15001 in ports["ratings"] and 9080 in ports["ratings-app"] and 24224 in ports["fluentd"]
