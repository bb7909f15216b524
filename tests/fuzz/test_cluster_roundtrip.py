"""Istio's cluster names and SNIs: encoded from generated parts, decoded back to the same parts.

``outbound|9080|v2|reviews.default.svc.cluster.local`` is written from (direction, port, subset, service,
namespace) exactly as Istio's pilot writes it; ``decode_cluster`` must return those parts, ``decode_sni``
the same for ``outbound_.9080_.v2_.reviews.default.svc.cluster.local``, and the Record a proxy's entry
becomes must name that service. Any other text decodes without raising.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from telemetry.envoy.clusters import (
    BLACKHOLE,
    INBOUND,
    INBOUND_PASSTHROUGH,
    NOT_ISTIO,
    OUTBOUND,
    PASSTHROUGH,
    IstioCluster,
    decode_cluster,
    decode_sni,
)
from telemetry.envoy.istio import RecordAssembler
from telemetry.envoy.operators import EnvoyFields
from telemetry.envoy.peers import PeerTable
from telemetry.model import Workload

# Port names Istio < 1.9 put where the subset goes on inbound clusters.
LEGACY_PORT_NAMES = ("http", "tcp", "grpc", "https", "tls", "mongo", "redis", "mysql")

dns_labels = st.from_regex(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
subsets = st.one_of(
    st.just(""), st.sampled_from(LEGACY_PORT_NAMES), st.from_regex(r"[a-z0-9][-a-z0-9.]{0,10}", fullmatch=True)
)
ports = st.integers(1, 65535).map(str)
cluster_domains = st.sampled_from(["cluster.local", "corp.example", "c1.mesh"])


@given(st.sampled_from([OUTBOUND, INBOUND]), ports, subsets, dns_labels, dns_labels, cluster_domains)
def test_cluster_name_decodes_to_the_parts_it_was_written_from(
    direction: str, port: str, subset: str, service: str, namespace: str, domain: str
) -> None:
    host = f"{service}.{namespace}.svc.{domain}"
    decoded = decode_cluster(f"{direction}|{port}|{subset}|{host}")
    kept_subset = "" if direction == INBOUND and subset in LEGACY_PORT_NAMES else subset
    assert decoded == IstioCluster(direction, port, kept_subset, host, service, namespace)


@given(ports, st.sampled_from([INBOUND, OUTBOUND]))
def test_cluster_without_host_decodes_its_direction_and_port(port: str, direction: str) -> None:
    # Istio >= 1.9 names every inbound cluster "inbound|PORT||".
    assert decode_cluster(f"{direction}|{port}||") == IstioCluster(direction, port)


@given(ports, subsets, dns_labels, dns_labels, cluster_domains)
def test_sni_decodes_to_the_service_it_was_written_for(
    port: str, subset: str, service: str, namespace: str, domain: str
) -> None:
    host = f"{service}.{namespace}.svc.{domain}"
    assert decode_sni(f"outbound_.{port}_.{subset}_.{host}") == IstioCluster(
        OUTBOUND, port, subset, host, service, namespace
    )


@given(ports, subsets, dns_labels, dns_labels)
def test_client_record_names_the_service_of_its_cluster(port: str, subset: str, service: str, namespace: str) -> None:
    host = f"{service}.{namespace}.svc.cluster.local"
    fields = EnvoyFields(method="GET", response_code="200", upstream_cluster=f"outbound|{port}|{subset}|{host}")
    record = RecordAssembler(PeerTable()).assemble(fields, Workload("productpage-v1", "default"))
    assert (record.reporter, record.destination_service, record.destination_service_name) == ("source", host, service)
    assert record.destination_service_namespace == namespace


@given(st.sampled_from([PASSTHROUGH, BLACKHOLE, INBOUND_PASSTHROUGH]))
def test_special_clusters_name_themselves(name: str) -> None:
    decoded = decode_cluster(name)
    assert (decoded.host, decoded.service, decoded.special) == (name, name, name)
    assert decoded.direction == (INBOUND if name == INBOUND_PASSTHROUGH else OUTBOUND)


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_text_decodes_without_raising(text: str) -> None:
    cluster, sni = decode_cluster(text), decode_sni(text)
    # Istio's names have four parts (or are one of the special names); anything else is not Istio's.
    if text.count("|") != 3 and cluster.special == "":
        assert cluster == NOT_ISTIO
    if not text.startswith("outbound_."):
        assert sni == NOT_ISTIO


@given(
    st.lists(
        st.sampled_from(["outbound", "inbound", "|", "9080", "v1", "a.b.svc.x", "_.", "outbound_.", ""]), max_size=8
    )
)
def test_near_miss_names_decode_without_raising(parts: list[str]) -> None:
    text = "".join(parts)
    decoded = decode_cluster(text)
    assert decoded.direction in ("", INBOUND, OUTBOUND)
    assert decode_sni(text).direction in ("", OUTBOUND)
