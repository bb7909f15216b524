"""Who wrote a log file: the workloads config first, then the Kubernetes log path."""

from __future__ import annotations

from telemetry.model import Workload
from telemetry.receivers.filelog.config import WorkloadMatch
from telemetry.receivers.filelog.identity import identity_from_path, reporter_identity

UID = "4c1e2d3a-1111-2222-3333-444455556666"


def test_kubernetes_pod_log_path() -> None:
    path = f"/var/log/pods/bookinfo_reviews-v2-7bf8c9648f-xk2zq_{UID}/istio-proxy/0.log"
    assert identity_from_path(path) == Workload(name="reviews-v2", namespace="bookinfo", app="reviews", version="v2")


def test_kubernetes_rotated_pod_log_and_container_link_paths() -> None:
    rotated = f"/var/log/pods/default_db-0_{UID}/istio-proxy/0.log.20240504-172259"
    assert identity_from_path(rotated) == Workload(name="db", namespace="default", app="db", version="unknown")
    link = "/var/log/containers/ratings-v1-5c9f8d7b6c-x2xkz_default_istio-proxy-" + "a1" * 32 + ".log"
    identity = identity_from_path(link)
    assert identity is not None and (identity.name, identity.namespace) == ("ratings-v1", "default")


def test_gateway_pods_are_gateways() -> None:
    path = f"/var/log/pods/istio-system_istio-ingressgateway-7d4f9c7b8-x2xkz_{UID}/istio-proxy/0.log"
    identity = identity_from_path(path)
    assert identity is not None
    assert identity.gateway and identity.name == "istio-ingressgateway"


def test_other_paths_have_no_identity() -> None:
    assert identity_from_path("/var/log/envoy/access.log") is None
    assert reporter_identity("/var/log/envoy/access.log", []) == Workload()


def test_the_first_matching_workloads_entry_wins_over_the_path() -> None:
    path = f"/var/log/pods/default_reviews-v2-7bf8c9648f-xk2zq_{UID}/istio-proxy/0.log"
    workloads = [
        WorkloadMatch(glob="/srv/*", workload="other"),
        WorkloadMatch(glob="/var/log/pods/*", workload="edge", namespace="ingress", gateway=True),
        WorkloadMatch(glob="*", workload="later"),
    ]
    assert reporter_identity(path, workloads) == Workload(
        name="edge", namespace="ingress", app="edge", version="unknown", gateway=True
    )


def test_a_configured_gateway_name_makes_a_gateway() -> None:
    workloads = [WorkloadMatch(glob="*", workload="istio-egressgateway", namespace="istio-system", app="egress")]
    identity = reporter_identity("/x.log", workloads)
    assert identity.gateway and identity.app == "egress"


def test_statefulset_and_daemonset_pod_paths() -> None:
    path = f"/var/log/pods/db_mysql-0_{UID}/istio-proxy/0.log"
    assert identity_from_path(path) == Workload(name="mysql", namespace="db", app="mysql")
    path = f"/var/log/pods/ops_node-agent-x7k2p_{UID}/istio-proxy/0.log"
    assert identity_from_path(path) == Workload(name="node-agent", namespace="ops", app="node-agent")


def test_app_and_version_stay_importable_for_the_cli() -> None:
    from telemetry.receivers.filelog.identity import app_and_version

    assert app_and_version("reviews-v2") == ("reviews", "v2")
