"""One pod, one Workload: the shared pod-name rules and every receiver agreeing on them."""

from __future__ import annotations

import pytest
from envoy.config.core.v3.base_pb2 import Node
from google.protobuf.struct_pb2 import Struct

from telemetry.envoy.node import parse_node
from telemetry.envoy.workloads import app_and_version, workload_from_pod, workload_of_pod
from telemetry.model import UNKNOWN, Workload
from telemetry.receivers.filelog.identity import identity_from_path
from telemetry.spans.normalize import reporter_of

UID = "4c1e2d3a-1111-2222-3333-444455556666"


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("reviews-v2-7bf8c9648f-xk2zq", "reviews-v2"),  # Deployment (ReplicaSet hash + suffix)
        ("productpage-v1-6b746f74dc-9stvs", "productpage-v1"),
        ("ratings-v1-b6994bb9-gl6nx", "ratings-v1"),  # an 8-character hash
        ("mysql-0", "mysql"),  # StatefulSet ordinal
        ("kafka-broker-12", "kafka-broker"),
        ("fluentd-x7k2p", "fluentd"),  # DaemonSet or Job
        ("node-exporter-x7k2p", "node-exporter"),
        ("reviews-v2-xk2zq", "reviews-v2"),  # a 5-character suffix only: not a Deployment's hash
        ("reviews-proxy", "reviews-proxy"),  # vowels: not a generated suffix
        ("details-v1", "details-v1"),  # a bare pod
        ("details", "details"),
    ],
)
def test_workload_of_pod_strips_generated_suffixes_only(pod: str, workload: str) -> None:
    assert workload_of_pod(pod) == workload


def test_app_and_version_come_from_a_trailing_version() -> None:
    assert app_and_version("reviews-v2") == ("reviews", "v2")
    assert app_and_version("productpage") == ("productpage", UNKNOWN)
    assert app_and_version("v2") == ("v2", UNKNOWN)
    assert app_and_version("reviews-v2-canary") == ("reviews-v2-canary", UNKNOWN)


def test_workload_from_pod_derives_app_and_version_unless_given() -> None:
    assert workload_from_pod("reviews-v2-7bf8c9648f-xk2zq", "default") == Workload(
        "reviews-v2", "default", "reviews", "v2"
    )
    explicit = workload_from_pod("reviews-v2-7bf8c9648f-xk2zq", "default", app="reviews-svc", version="2.1")
    assert (explicit.name, explicit.app, explicit.version) == ("reviews-v2", "reviews-svc", "2.1")
    # Empty metadata is no metadata.
    assert workload_from_pod("mysql-0", "db", app="", version="") == Workload("mysql", "db", "mysql", UNKNOWN)
    assert workload_from_pod("x", "") == Workload("x", UNKNOWN, "x", UNKNOWN)


def test_gateways_by_name_or_by_flag() -> None:
    assert workload_from_pod("istio-ingressgateway-6c8f5c5c8b-q9z2w", "istio-system").gateway
    assert workload_from_pod("istio-egressgateway-x7k2p", "istio-system").gateway
    assert workload_from_pod("edge-proxy-6c8f5c5c8b-q9z2w", "edge", gateway=True).gateway
    assert not workload_from_pod("reviews-v2-7bf8c9648f-xk2zq", "default").gateway


def _file_path(pod: str, namespace: str) -> Workload | None:
    return identity_from_path(f"/var/log/pods/{namespace}_{pod}_{UID}/istio-proxy/0.log")


def _node_id(pod: str, namespace: str, kind: str = "sidecar") -> str:
    return f"{kind}~10.244.0.12~{pod}.{namespace}~{namespace}.svc.cluster.local"


@pytest.mark.parametrize(
    ("pod", "namespace", "kind", "expected"),
    [
        ("reviews-v2-7bf8c9648f-xk2zq", "default", "sidecar", Workload("reviews-v2", "default", "reviews", "v2")),
        ("mysql-0", "db", "sidecar", Workload("mysql", "db", "mysql", UNKNOWN)),
        ("node-agent-x7k2p", "ops", "sidecar", Workload("node-agent", "ops", "node-agent", UNKNOWN)),
        ("details-v1", "default", "sidecar", Workload("details-v1", "default", "details", "v1")),
        (
            "istio-ingressgateway-6c8f5c5c8b-q9z2w",
            "istio-system",
            "router",
            Workload("istio-ingressgateway", "istio-system", "istio-ingressgateway", UNKNOWN, gateway=True),
        ),
    ],
)
def test_the_same_pod_is_the_same_workload_from_every_source(
    pod: str, namespace: str, kind: str, expected: Workload
) -> None:
    node_id = _node_id(pod, namespace, kind)
    from_file = _file_path(pod, namespace)
    from_als, _ = parse_node(Node(id=node_id))  # an ALS node without metadata
    from_span, _ = reporter_of(node_id, "", "", "", "ignored")  # a span without istio.canonical_* tags
    assert from_file == from_als == from_span == expected


def test_explicit_metadata_wins_in_als_and_spans_alike() -> None:
    node_id = _node_id("reviews-v2-7bf8c9648f-xk2zq", "default")
    labels = Struct()
    labels.update({"service.istio.io/canonical-name": "reviews-svc", "service.istio.io/canonical-revision": "2.1"})
    node = Node(id=node_id)
    node.metadata.fields["LABELS"].struct_value.CopyFrom(labels)
    from_als, _ = parse_node(node)
    from_span, _ = reporter_of(node_id, "reviews-svc", "default", "2.1", "ignored")
    assert from_als == from_span == Workload("reviews-v2", "default", "reviews-svc", "2.1")
