"""Secure defaults: every listener of the default config is on loopback; the containers' configs open
theirs on purpose (0.0.0.0), and only the ones they run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from telemetry.config import Config
from telemetry.confload import load_mapping
from telemetry.endpoints import endpoints, is_loopback, listeners, split_endpoint

COMPOSE = Path(__file__).parents[3] / "compose"


def test_every_listener_of_the_default_config_is_on_loopback() -> None:
    found = listeners(load_mapping(Config, {}, environ={}))
    # The walk finds every server there is today; a new one is found, and checked, the same way.
    assert {path for path, _ in found} >= {
        "receivers.als.endpoint",
        "receivers.otlp.grpc.endpoint",
        "receivers.otlp.http.endpoint",
        "receivers.zipkin.endpoint",
        "exporters.prometheus.endpoint",
        "graph.endpoint",
    }
    assert [(path, endpoint) for path, endpoint in found if not is_loopback(split_endpoint(endpoint)[0])] == []


def test_every_endpoint_of_the_default_config_is_on_loopback_or_unset() -> None:
    # Servers' and the targets exporters send to, enabled or not: no default reaches beyond this machine.
    found = endpoints(Config())
    assert "exporters.otlp.endpoint" in {path for path, _ in found}
    outside = [(path, value) for path, value in found if value and not is_loopback(split_endpoint(value)[0])]
    assert outside == []


def test_authentication_and_tls_are_off_by_default_on_every_server_that_has_them() -> None:
    config = Config()
    for path, _ in listeners(config):
        owner = config
        for key in path.split(".")[:-1]:
            owner = getattr(owner, key)
        if hasattr(owner, "auth"):
            assert not owner.auth.enabled and not owner.tls.enabled, path


def test_the_listener_walk_skips_what_is_disabled_and_the_targets_exporters_send_to() -> None:
    config = load_mapping(
        Config,
        {
            "receivers": {"zipkin": {"enabled": False}, "otlp": {"grpc": {"enabled": False}}},
            "exporters": {"otlp": {"enabled": True, "endpoint": "jaeger:4317"}, "fluentforward": {"enabled": True}},
            "graph": {"enabled": False},
        },
        environ={},
    )
    paths = [path for path, _ in listeners(config)]
    assert paths == ["receivers.als.endpoint", "receivers.otlp.http.endpoint", "exporters.prometheus.endpoint"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("10.0.0.1", False), ("collector.local", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def kubernetes_configs() -> dict[str, str]:
    documents = yaml.safe_load_all((COMPOSE / "kubernetes" / "meshscope.yaml").read_text())
    (config_map,) = [document for document in documents if document and document["kind"] == "ConfigMap"]
    return dict(config_map["data"])


CONTAINER_CONFIGS = {
    "compose/meshscope/meshscope.yaml": (COMPOSE / "meshscope" / "meshscope.yaml").read_text(),
    **{f"compose/kubernetes/meshscope.yaml:{name}": text for name, text in kubernetes_configs().items()},
}


@pytest.mark.parametrize("name", sorted(CONTAINER_CONFIGS))
def test_container_configs_open_every_server_they_run_to_all_interfaces(name: str) -> None:
    config = load_mapping(Config, yaml.safe_load(CONTAINER_CONFIGS[name]), environ={})
    found = listeners(config)
    assert found, name
    # Inside a container loopback is unreachable from the other containers: each address is set on purpose.
    assert [(path, endpoint) for path, endpoint in found if split_endpoint(endpoint)[0] != "0.0.0.0"] == []


def test_meshscope_ui_listens_on_loopback_by_default() -> None:
    from telemetry.cli import build_parser

    args = build_parser().parse_args(["ui", "--source", "http://127.0.0.1:8050"])
    assert is_loopback(split_endpoint(args.listen)[0])
