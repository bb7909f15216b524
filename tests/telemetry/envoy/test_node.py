from __future__ import annotations

from typing import Any

import pytest
from envoy.config.core.v3.base_pb2 import Node
from google.protobuf.struct_pb2 import Struct

from telemetry.envoy.errors import ParseError
from telemetry.envoy.node import parse_node
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
    # No LABELS: app and version come from the workload name, as they do from a log file's path.
    assert workload == Workload(name="reviews-v2", namespace="default", app="reviews", version="v2")
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


def test_statefulset_and_daemonset_pods_in_the_id_lose_their_suffixes() -> None:
    workload, _ = parse_node(make_node("sidecar~10.244.0.20~mysql-0.db~db.svc.cluster.local"))
    assert workload == Workload(name="mysql", namespace="db", app="mysql")
    workload, _ = parse_node(make_node("sidecar~10.244.0.21~node-agent-x7k2p.ops~ops.svc.cluster.local"))
    assert workload == Workload(name="node-agent", namespace="ops", app="node-agent")


def test_labels_win_over_the_name_field_by_field() -> None:
    workload, _ = parse_node(make_node(SIDECAR_ID, LABELS={"app": "reviews-svc"}))
    assert (workload.app, workload.version) == ("reviews-svc", "v2")
    workload, _ = parse_node(make_node(SIDECAR_ID, LABELS={"version": "canary"}))
    assert (workload.app, workload.version) == ("reviews", "canary")


def test_workload_name_metadata_without_labels_derives_app_and_version() -> None:
    workload, _ = parse_node(make_node(SIDECAR_ID, WORKLOAD_NAME="ratings-v1"))
    assert (workload.name, workload.app, workload.version) == ("ratings-v1", "ratings", "v1")


def test_plain_envoy_gets_no_derived_labels() -> None:
    workload, _ = parse_node(make_node("front-proxy-1", cluster="front-proxy-v2"))
    assert (workload.name, workload.app, workload.version) == ("front-proxy-v2", UNKNOWN, UNKNOWN)
