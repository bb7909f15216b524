"""docker-compose.yml: valid for each profile, and the shape the issue asks for (pinned images, healthchecks,
ordered start-up, named volumes, a small core profile and a full one)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.compose.stack import COMPOSE, raw_compose, resolved_compose

CORE = {
    "istio-ingressgateway", "productpage", "details", "reviews-v1", "reviews-v2", "reviews-v3", "ratings",
    "productpage-app", "details-app", "reviews-v1-app", "reviews-v2-app", "reviews-v3-app", "ratings-app",
    "redis", "loadgen", "meshscope", "prometheus", "grafana", "jaeger",
}  # fmt: skip
FULL_ONLY = {"zipkin", "fluentd", "elasticsearch", "kibana", "logs-setup"}
BUILT_HERE = {"meshscope", "fluentd"}
ONE_SHOT = {"logs-setup"}  # runs to completion: no healthcheck, nothing waits for it


def services_in(profile: str) -> set[str]:
    return {name for name, service in raw_compose()["services"].items() if profile in service.get("profiles", [])}


@pytest.mark.parametrize("profile", ["core", "full"])
def test_docker_compose_config_accepts_each_profile(profile: str) -> None:
    services = resolved_compose(profile)["services"]
    assert CORE <= set(services)


def test_the_file_follows_the_compose_specification_without_a_version_key() -> None:
    assert "version" not in raw_compose()


def test_core_holds_the_mesh_and_its_observers_and_full_adds_zipkin_and_the_logging_stack() -> None:
    assert services_in("core") == CORE
    assert services_in("full") == CORE | FULL_ONLY
    assert set(raw_compose()["services"]) == CORE | FULL_ONLY


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in resolved_compose("full")["services"].items():
        image = service["image"]
        if name in BUILT_HERE:
            assert "build" in service, name
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert re.search(r"\d+\.\d+", tag) and tag != "latest", (name, image)


def test_every_image_built_here_pins_its_base_image() -> None:
    for dockerfile in (COMPOSE / "meshscope" / "Dockerfile", COMPOSE / "fluentd" / "Dockerfile"):
        bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
        assert bases and all(re.search(r":v?\d+\.\d+\.\d+", base) for base in bases), dockerfile


def test_every_long_running_service_has_a_healthcheck_except_the_load_generator() -> None:
    for name, service in resolved_compose("full")["services"].items():
        if name == "loadgen" or name in ONE_SHOT:
            continue
        assert service.get("healthcheck", {}).get("test"), name


def test_dependencies_wait_for_health_and_name_existing_services() -> None:
    services = resolved_compose("full")["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, (name, dependency)
            assert condition["condition"] == "service_healthy", (name, dependency)
            assert "healthcheck" in services[dependency], (name, dependency)
    assert {"meshscope", "productpage"} <= set(services["istio-ingressgateway"]["depends_on"])


def test_every_sidecar_starts_after_its_app_and_the_collector() -> None:
    services = resolved_compose("core")["services"]
    for app in (name for name in services if name.endswith("-app")):
        sidecar = app.removesuffix("-app")
        assert {app, "meshscope"} <= set(services[sidecar]["depends_on"]), sidecar


def test_state_lives_in_named_volumes_declared_at_the_top_level() -> None:
    compose = raw_compose()
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared
    assert {"envoy-logs", "prometheus-data", "grafana-data", "elasticsearch-data"} <= declared


def test_the_collector_reads_the_volume_the_envoys_write_access_logs_to() -> None:
    services = resolved_compose("full")["services"]
    writers = {name for name, service in services.items() if _mounts(service).get("envoy-logs")}
    assert {"productpage", "details", "istio-ingressgateway", "meshscope"} <= writers
    # Fluentd gets the access logs from the collector, as structured events, not by tailing the files.
    assert "fluentd" not in writers
    assert _mounts(services["meshscope"])["envoy-logs"] == ("/var/log/meshscope", True)
    assert _mounts(services["ratings"])["envoy-logs"] == ("/var/log/meshscope", False)


def _mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """Named volumes mounted: source -> (target, read-only)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *mode = str(volume).split(":")
        if not source.startswith((".", "/")):
            mounts[source] = (target, mode == ["ro"])
    return mounts


def test_the_collector_image_runs_as_a_non_root_user_with_a_healthcheck_on_the_api() -> None:
    dockerfile = (COMPOSE / "meshscope" / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*http://127\.0\.0\.1:8050/api/health", dockerfile, re.M)
    copied = re.findall(r"^COPY\s+(\S+)", dockerfile, re.M)
    for source in copied:
        assert (COMPOSE.parent / source).exists(), source


def test_the_collectors_spool_and_working_directory_are_in_its_state_volume() -> None:
    # The image runs as a non-root user: what the collector writes must land in the volume it owns.
    dockerfile = (COMPOSE / "meshscope" / "Dockerfile").read_text()
    workdirs = re.findall(r"^WORKDIR\s+(\S+)", dockerfile, re.M)
    owned = re.findall(r"chown meshscope (\S+)", dockerfile)
    state = next(
        target.split(":")[1]
        for target in raw_compose()["services"]["meshscope"]["volumes"]
        if str(target).startswith("meshscope-state:")
    )
    assert workdirs[-1] == state and state in owned
    config = yaml.safe_load((COMPOSE / "meshscope" / "meshscope.yaml").read_text())
    assert config["exporters"]["fluentforward"]["spool"]["directory"].startswith(state + "/")
    assert config["receivers"]["filelog"]["checkpoint_file"].startswith(state + "/")
