"""Istio's Envoy cluster names, decoded.

``outbound|9080|v2|reviews.default.svc.cluster.local`` is the client side of a call to subset v2 of
reviews in namespace default on port 9080; ``inbound|9080||`` (``inbound|9080|http|reviews...`` in older
releases) is the server side; ``PassthroughCluster`` and ``BlackHoleCluster`` are outbound traffic to
hosts outside the mesh registry (allowed and blocked), ``InboundPassthroughCluster`` inbound traffic to
a port no service declares.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

OUTBOUND = "outbound"
INBOUND = "inbound"
PASSTHROUGH = "PassthroughCluster"
BLACKHOLE = "BlackHoleCluster"
INBOUND_PASSTHROUGH = "InboundPassthroughCluster"

_SPECIAL = {
    PASSTHROUGH: (OUTBOUND, PASSTHROUGH),
    BLACKHOLE: (OUTBOUND, BLACKHOLE),
    INBOUND_PASSTHROUGH: (INBOUND, INBOUND_PASSTHROUGH),
    # Older releases split the inbound passthrough cluster by IP family.
    "InboundPassthroughClusterIpv4": (INBOUND, INBOUND_PASSTHROUGH),
    "InboundPassthroughClusterIpv6": (INBOUND, INBOUND_PASSTHROUGH),
}


class IstioCluster(NamedTuple):
    direction: str  # "outbound", "inbound" or "" when the name is not Istio's
    port: str = ""
    subset: str = ""
    host: str = ""  # the service's FQDN, or the special cluster's name
    service: str = ""  # short service name
    namespace: str = ""
    special: str = ""  # PassthroughCluster, BlackHoleCluster, InboundPassthroughCluster or ""


NOT_ISTIO = IstioCluster("")


def service_of_host(host: str) -> tuple[str, str]:
    """``reviews.default.svc.cluster.local`` -> (``reviews``, ``default``); other hosts keep their name."""
    parts = host.split(".")
    if len(parts) >= 3 and parts[2] == "svc":
        return parts[0], parts[1]
    if len(parts) == 2 and parts[1] and not parts[1].isdigit():
        # A short "name.namespace" form, as in some gateway configs.
        return parts[0], parts[1]
    return host, ""


@lru_cache(maxsize=16_384)
def decode_cluster(name: str) -> IstioCluster:
    special = _SPECIAL.get(name)
    if special is not None:
        direction, canonical = special
        return IstioCluster(direction, host=canonical, service=canonical, special=canonical)
    parts = name.split("|")
    if len(parts) != 4 or parts[0] not in (OUTBOUND, INBOUND):
        return NOT_ISTIO
    direction, port, subset, host = parts
    if direction == INBOUND and subset in ("http", "tcp", "grpc", "https", "tls", "mongo", "redis", "mysql"):
        # Istio < 1.9 put the port name where the subset goes on inbound clusters.
        subset = ""
    service, namespace = service_of_host(host) if host else ("", "")
    return IstioCluster(direction, port, subset, host, service, namespace)


@lru_cache(maxsize=16_384)
def decode_sni(sni: str) -> IstioCluster:
    """Istio's mTLS SNI ``outbound_.9080_.v2_.reviews.default.svc.cluster.local`` names the service called."""
    if not sni.startswith("outbound_."):
        return NOT_ISTIO
    parts = sni.split("_.", 3)
    if len(parts) != 4:
        return NOT_ISTIO
    _, port, subset, host = parts
    service, namespace = service_of_host(host)
    return IstioCluster(OUTBOUND, port, subset, host, service, namespace)
