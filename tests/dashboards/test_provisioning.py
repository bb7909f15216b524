"""Grafana's provisioning files for compose: the shapes Grafana reads, the datasources linked, and the
dashboard provider pointed at where the generated JSON is mounted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

PROVISIONING = Path(__file__).parents[2] / "compose" / "grafana" / "provisioning"
MOUNTED_DASHBOARDS = "/var/lib/grafana/dashboards/meshscope"  # where compose mounts dashboards/json


def load(kind: str) -> dict[str, Any]:
    files = sorted((PROVISIONING / kind).glob("*.yaml"))
    assert len(files) == 1, files
    document: dict[str, Any] = yaml.safe_load(files[0].read_text())
    assert document["apiVersion"] == 1
    return document


def datasources() -> dict[str, dict[str, Any]]:
    return {source["type"]: source for source in load("datasources")["datasources"]}


def test_datasources_have_the_keys_grafana_provisions() -> None:
    sources = datasources()
    assert set(sources) == {"prometheus", "jaeger", "zipkin", "elasticsearch"}
    for source in sources.values():
        assert {"name", "type", "uid", "url", "access"} <= set(source), source["type"]
        assert source["access"] == "proxy" and re.fullmatch(r"https?://[\w.-]+:\d+", source["url"])
    uids = [source["uid"] for source in sources.values()]
    assert len(set(uids)) == len(uids)
    assert [source["type"] for source in sources.values() if source.get("isDefault")] == ["prometheus"]


def test_traces_link_to_logs_in_elasticsearch_by_trace_id() -> None:
    sources = datasources()
    for tracing in ("jaeger", "zipkin"):
        links = sources[tracing]["jsonData"]["tracesToLogsV2"]
        assert links["datasourceUid"] == sources["elasticsearch"]["uid"]
        assert links["filterByTraceID"] is True or "__trace.traceId" in links.get("query", "")
    es = sources["elasticsearch"]["jsonData"]
    assert {"index", "timeField"} <= set(es)
    assert es["dataLinks"][0]["datasourceUid"] == sources["jaeger"]["uid"]
    assert sources["jaeger"]["jsonData"]["tracesToMetrics"]["datasourceUid"] == sources["prometheus"]["uid"]


def test_grafana_variables_are_escaped_from_environment_expansion() -> None:
    # Grafana expands $NAME and ${NAME} in provisioning values from its environment; $$ is a literal $.
    text = (PROVISIONING / "datasources" / "meshscope.yaml").read_text()
    values = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert re.findall(r"(?<!\$)\$(?!\$)\{?_", values) == []
    assert "$${__trace.traceId}" in values


def test_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    providers = load("dashboards")["providers"]
    assert len(providers) == 1
    provider = providers[0]
    assert provider["type"] == "file" and provider["name"]
    assert provider["options"]["path"] == MOUNTED_DASHBOARDS


def test_compose_mounts_the_generated_dashboards_where_the_provider_reads() -> None:
    compose_files = sorted((PROVISIONING.parents[1]).glob("*compose*.y*ml"))
    if not compose_files:
        pytest.skip("no compose file yet: compose/ must mount dashboards/json at " + MOUNTED_DASHBOARDS)
    mounts = []
    for path in compose_files:
        services = yaml.safe_load(path.read_text()).get("services", {})
        for name, service in services.items():
            if "grafana" in name:
                mounts += [str(volume) for volume in service.get("volumes", [])]
    assert any(re.search(rf"dashboards/json/?:{re.escape(MOUNTED_DASHBOARDS)}(:ro)?$", mount) for mount in mounts), (
        mounts
    )
