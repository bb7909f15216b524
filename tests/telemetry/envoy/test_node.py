from __future__ import annotations

from typing import Any

import pytest
from envoy.config.core.v3.base_pb2 import Node
from google.protobuf.struct_pb2 import Struct

from telemetry.envoy.errors import ParseError
from telemetry.envoy.node import parse_node, workload_of_pod
from telemetry.model import UNKNOWN, Workload

SIDECAR_ID = "sidecar~10.244.0.12~reviews-v2-7bf8c9648f-xk2zq.default~default.svc.cluster.local"
GATEWAY_ID = "router~10.244.0.3~istio-ingressgateway-6c8f5c5c8b-q9z2w.istio-system~istio-system.svc.cluster.local"


def make_node(node_id: str = "", cluster: str = "", **metadata: Any) -> Node:
    node = Node(id=node_id, cluster=cluster)
    if metadata:
        struct = Struct()
        struct.update(metadata)
        node.metadata.CopyFrom(struct)
    return node


def test_sidecar_id_alone_names_workload_namespace_and_ip() -> None:
    workload, ip = parse_node(make_node(SIDECAR_ID))
    assert ip == "10.244.0.12"
    assert workload == Workload(name="reviews-v2", namespace="default")
    assert not workload.gateway


def test_router_id_is_a_gateway() -> None:
    workload, ip = parse_node(make_node(GATEWAY_ID))
    assert workload.gateway
    assert (workload.name, workload.namespace, ip) == ("istio-ingressgateway", "istio-system", "10.244.0.3")


def test_metadata_takes_precedence_over_the_id() -> None:
    node = make_node(
        SIDECAR_ID,
        NAME="reviews-v2-7bf8c9648f-xk2zq",
        NAMESPACE="bookinfo",
        WORKLOAD_NAME="reviews-v2-deployment",
        SERVICE_ACCOUNT="bookinfo-reviews",
        LABELS={"app": "reviews", "version": "v2", "service.istio.io/canonical-name": "reviews-canonical"},
    )
    workload, _ = parse_node(node)
    assert workload == Workload(
        name="reviews-v2-deployment",
        namespace="bookinfo",
        app="reviews",
        version="v2",
        principal="spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",
    )


def test_canonical_labels_stand_in_for_missing_app_and_version() -> None:
    labels = {"service.istio.io/canonical-name": "ratings", "service.istio.io/canonical-revision": "v1"}
    workload, _ = parse_node(make_node(SIDECAR_ID, LABELS=labels))
    assert (workload.app, workload.version) == ("ratings", "v1")


def test_pod_name_from_metadata_gives_the_workload_without_workload_name() -> None:
    workload, _ = parse_node(make_node(SIDECAR_ID, NAME="ratings-v1-5d8f7b9c6d-h4x7p"))
    assert workload.name == "ratings-v1"


def test_trust_domain_comes_from_the_node_domain_or_metadata() -> None:
    custom_domain = "sidecar~10.0.0.1~web-7c9f6d8b4b-zk2lm.shop~shop.svc.corp.example"
    workload, _ = parse_node(make_node(custom_domain, SERVICE_ACCOUNT="web"))
    assert workload.principal == "spiffe://corp.example/ns/shop/sa/web"
    workload, _ = parse_node(make_node(custom_domain, SERVICE_ACCOUNT="web", TRUST_DOMAIN="mesh.example"))
    assert workload.principal == "spiffe://mesh.example/ns/shop/sa/web"


def test_no_service_account_leaves_the_principal_unknown() -> None:
    workload, _ = parse_node(make_node(SIDECAR_ID))
    assert workload.principal == UNKNOWN


def test_plain_envoy_is_named_by_its_cluster_and_instance_ip() -> None:
    workload, ip = parse_node(make_node("front-proxy-1", cluster="front-proxy", INSTANCE_IPS="172.18.0.4,fd00::4"))
    assert (workload.name, workload.namespace, ip) == ("front-proxy", UNKNOWN, "172.18.0.4")


def test_plain_envoy_without_cluster_is_named_by_its_id() -> None:
    workload, ip = parse_node(make_node("edge"))
    assert (workload.name, ip) == ("edge", "")


def test_empty_node_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_node(Node())
    assert caught.value.reason == "bad_node"


def test_parsing_does_not_add_metadata_keys_to_the_node() -> None:
    node = make_node(SIDECAR_ID)
    parse_node(node)
    assert not node.HasField("metadata")


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("reviews-v2-7bf8c9648f-xk2zq", "reviews-v2"),  # Deployment (ReplicaSet hash + suffix)
        ("fluentd-x7k2p", "fluentd"),  # DaemonSet or Job
        ("reviews-proxy", "reviews-proxy"),  # vowels: not a generated suffix
        ("mysql-0", "mysql-0"),  # StatefulSet pods keep their ordinal
        ("details", "details"),
    ],
)
def test_workload_of_pod_strips_generated_suffixes_only(pod: str, workload: str) -> None:
    assert workload_of_pod(pod) == workload
