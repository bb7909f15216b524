"""The Envoy configs, rendered by the containers' own render.sh with each one's environment from compose,
parse strictly as Envoy's v3 Bootstrap, and say what the stack relies on: Istio-format access logs the
collector attributes to the right workload, ALS and Zipkin spans to the collector, faults from environment."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

# The typed_config messages the configs use: imported so the descriptor pool resolves their Any types.
import envoy.config.trace.v3.zipkin_pb2  # noqa: F401
import envoy.extensions.access_loggers.file.v3.file_pb2  # noqa: F401
import envoy.extensions.access_loggers.grpc.v3.als_pb2  # noqa: F401
import envoy.extensions.filters.http.fault.v3.fault_pb2  # noqa: F401
import envoy.extensions.filters.http.router.v3.router_pb2  # noqa: F401
import envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2  # noqa: F401
import envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2  # noqa: F401
import envoy.extensions.upstreams.http.v3.http_protocol_options_pb2  # noqa: F401
import pytest
import yaml
from envoy.config.bootstrap.v3.bootstrap_pb2 import Bootstrap
from google.protobuf.json_format import ParseDict

from telemetry.envoy.presets import ISTIO
from tests.compose.stack import COMPOSE, envoy_services, render_envoy, resolved_compose, walk

ENVOYS = ["istio-ingressgateway", "productpage", "details", "reviews-v1", "reviews-v2", "reviews-v3", "ratings"]


def rendered(name: str, tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return render_envoy(envoy_services(resolved_compose("core", env))[name], tmp_path)


def typed(document: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    return [config for config in walk(document, "typed_config") if config["@type"].endswith(suffix)]


def test_every_envoy_in_compose_is_one_of_the_mesh_proxies() -> None:
    assert sorted(envoy_services(resolved_compose("core"))) == sorted(ENVOYS)


@pytest.mark.parametrize("name", ENVOYS)
def test_each_envoy_config_parses_strictly_as_a_v3_bootstrap(name: str, tmp_path: Path) -> None:
    document = rendered(name, tmp_path)
    bootstrap = ParseDict(document, Bootstrap(), ignore_unknown_fields=False)
    assert bootstrap.static_resources.listeners and bootstrap.admin.address.socket_address.port_value == 15000


def test_a_mistyped_field_fails_the_strict_parse(tmp_path: Path) -> None:
    document = rendered("ratings", tmp_path)
    document["static_resources"]["clusters"][0]["conect_timeout"] = "1s"
    with pytest.raises(Exception, match="conect_timeout"):
        ParseDict(document, Bootstrap(), ignore_unknown_fields=False)


def test_templates_hold_no_shell_syntax_but_name_references(tmp_path: Path) -> None:
    # render.sh expands templates as a here-document: only ${NAME}, \" and \n may appear.
    for template in (COMPOSE / "envoy").glob("*.yaml"):
        text = template.read_text()
        assert "`" not in text, template
        assert re.findall(r"\$(?!\{[A-Z_]+\})", text) == [], template
        assert re.findall(r"\\(?![\"n])", text) == [], template


@pytest.mark.parametrize("name", ENVOYS)
def test_access_logs_use_istios_format_in_files_the_collector_names_the_workload_of(name: str, tmp_path: Path) -> None:
    document = rendered(name, tmp_path)
    collector = yaml.safe_load((COMPOSE / "meshscope" / "meshscope.yaml").read_text())["receivers"]["filelog"]
    workload = document["node"]["metadata"]["WORKLOAD_NAME"]
    files = typed(document, "FileAccessLog")
    assert files
    for config in files:
        assert config["log_format"]["text_format_source"]["inline_string"] == ISTIO
        path = config["path"]
        assert any(fnmatch(path, include) for include in collector["include"]), path
        matches = [entry for entry in collector["workloads"] if fnmatch(path, entry["glob"])]
        assert matches and matches[0]["workload"] == workload, path
        assert matches[0]["namespace"] == document["node"]["metadata"]["NAMESPACE"]


def test_details_streams_als_instead_of_the_file_and_the_others_the_reverse(tmp_path: Path) -> None:
    def percent(document: dict[str, Any], runtime_key: str) -> set[int]:
        return {
            log["filter"]["runtime_filter"]["percent_sampled"]["numerator"]
            for log in (logs for value in walk(document, "access_log") for logs in value)
            if log.get("filter", {}).get("runtime_filter", {}).get("runtime_key") == runtime_key
        }

    details, reviews = rendered("details", tmp_path), rendered("reviews-v2", tmp_path)
    assert (percent(details, "meshscope.als"), percent(details, "meshscope.file_log")) == ({100}, {0})
    assert (percent(reviews, "meshscope.als"), percent(reviews, "meshscope.file_log")) == ({0}, {100})
    als = typed(details, "HttpGrpcAccessLogConfig")[0]["common_config"]
    assert als["transport_api_version"] == "V3"
    assert _cluster_address(details, als["grpc_service"]["envoy_grpc"]["cluster_name"]) == ("meshscope", 9001)


@pytest.mark.parametrize("name", ENVOYS)
def test_spans_go_to_the_collectors_zipkin_receiver(name: str, tmp_path: Path) -> None:
    document = rendered(name, tmp_path)
    tracers = typed(document, "ZipkinConfig")
    assert tracers
    for tracer in tracers:
        assert tracer["collector_endpoint"] == "/api/v2/spans" and tracer["collector_endpoint_version"] == "HTTP_JSON"
        assert _cluster_address(document, tracer["collector_cluster"]) == ("meshscope", 9411)


def test_faults_default_to_a_slow_reviews_v3_and_a_failing_ratings(tmp_path: Path) -> None:
    assert _fault(rendered("reviews-v3", tmp_path)) == ("2s", 50, 503, 0)
    assert _fault(rendered("ratings", tmp_path)) == ("1s", 0, 503, 10)
    assert _fault(rendered("details", tmp_path)) == ("1s", 0, 503, 0)


def test_faults_follow_the_environment_compose_is_started_with(tmp_path: Path) -> None:
    env = {"REVIEWS_V3_DELAY": "500ms", "REVIEWS_V3_DELAY_PERCENT": "7", "RATINGS_ABORT_PERCENT": "30"}
    assert _fault(rendered("reviews-v3", tmp_path, env))[:2] == ("500ms", 7)
    assert _fault(rendered("ratings", tmp_path, env))[3] == 30


def _fault(document: dict[str, Any]) -> tuple[str, int, int, int]:
    (fault,) = typed(document, "HTTPFault")
    delay, abort = fault["delay"], fault["abort"]
    return (
        delay["fixed_delay"],
        delay["percentage"]["numerator"],
        abort["http_status"],
        abort["percentage"]["numerator"],
    )


def _cluster_address(document: dict[str, Any], cluster_name: str) -> tuple[str, int]:
    (cluster,) = [c for c in document["static_resources"]["clusters"] if c["name"] == cluster_name]
    (address,) = walk(cluster, "socket_address")
    return address["address"], address["port_value"]
