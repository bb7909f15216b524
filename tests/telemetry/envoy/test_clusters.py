from __future__ import annotations

import pytest

from telemetry.envoy.clusters import IstioCluster, decode_cluster, decode_sni


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("outbound|9080|v2|reviews.default.svc.cluster.local",
         IstioCluster("outbound", "9080", "v2", "reviews.default.svc.cluster.local", "reviews", "default")),
        ("outbound|3306||mysqldb.data.svc.cluster.local",
         IstioCluster("outbound", "3306", "", "mysqldb.data.svc.cluster.local", "mysqldb", "data")),
        ("inbound|9080||", IstioCluster("inbound", "9080", "", "", "", "")),
        ("inbound|9080|http|reviews.default.svc.cluster.local",
         IstioCluster("inbound", "9080", "", "reviews.default.svc.cluster.local", "reviews", "default")),
        ("PassthroughCluster", IstioCluster("outbound", host="PassthroughCluster", service="PassthroughCluster", special="PassthroughCluster")),
        ("BlackHoleCluster", IstioCluster("outbound", host="BlackHoleCluster", service="BlackHoleCluster", special="BlackHoleCluster")),
        ("InboundPassthroughClusterIpv4", IstioCluster("inbound", host="InboundPassthroughCluster", service="InboundPassthroughCluster", special="InboundPassthroughCluster")),
        ("my_static_cluster", IstioCluster("")),
        ("outbound|9080", IstioCluster("")),
    ],
)  # fmt: skip
def test_istio_cluster_names_decode(name: str, expected: IstioCluster) -> None:
    assert decode_cluster(name) == expected


def test_mesh_sni_names_the_called_service() -> None:
    sni = decode_sni("outbound_.9080_.v2_.reviews.default.svc.cluster.local")
    assert (sni.direction, sni.port, sni.subset, sni.service, sni.namespace) == (
        "outbound",
        "9080",
        "v2",
        "reviews",
        "default",
    )
    assert decode_sni("api.example.com").direction == ""
