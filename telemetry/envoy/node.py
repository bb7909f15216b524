"""Who a proxy is, from the Envoy ``Node`` it announces (ALS, xDS): Istio's node id and node metadata.

Istio names a proxy ``TYPE~IP~POD.NAMESPACE~DOMAIN``, e.g.
``sidecar~10.244.0.12~reviews-v2-7bf8c9648f-xk2zq.default~default.svc.cluster.local``; a ``router``
is a gateway. The node metadata (NAME, NAMESPACE, WORKLOAD_NAME, LABELS, SERVICE_ACCOUNT, ...) says the
same more precisely and wins where present. A plain Envoy (no Istio) is named by its metadata, else by
its cluster, else by its id.
"""

from __future__ import annotations

from envoy.config.core.v3.base_pb2 import Node
from google.protobuf.struct_pb2 import Struct

from telemetry.envoy.errors import ParseError
from telemetry.envoy.workloads import workload_from_pod, workload_named
from telemetry.model import UNKNOWN, Workload

GATEWAY_TYPE = "router"

_APP_LABELS = ("app", "service.istio.io/canonical-name", "app.kubernetes.io/name")
_VERSION_LABELS = ("version", "service.istio.io/canonical-revision", "app.kubernetes.io/version")


def _string(struct: Struct, key: str) -> str:
    # Struct.fields["X"] would insert an empty value into the caller's message; .get does not.
    value = struct.fields.get(key)
    if value is None or value.WhichOneof("kind") != "string_value":
        return ""
    return value.string_value


def _first_label(labels: Struct | None, keys: tuple[str, ...]) -> str:
    if labels is None:
        return ""
    for key in keys:
        value = _string(labels, key)
        if value:
            return value
    return ""


def _split_istio_id(node_id: str) -> tuple[str, str, str, str, str] | None:
    """(type, ip, pod, namespace, domain) of an Istio node id, or None when the id is not one."""
    parts = node_id.split("~")
    if len(parts) != 4 or not parts[0]:
        return None
    kind, ip, pod_dot_namespace, domain = parts
    pod, _, namespace = pod_dot_namespace.rpartition(".")
    if not pod:
        pod, namespace = pod_dot_namespace, ""
    return kind, ip, pod, namespace, domain


def _trust_domain(metadata: Struct, domain: str, namespace: str) -> str:
    explicit = _string(metadata, "TRUST_DOMAIN")
    if explicit:
        return explicit
    # The node id's domain is "NAMESPACE.svc.CLUSTER_DOMAIN"; Istio's default trust domain is the
    # cluster domain.
    prefix = f"{namespace}.svc."
    if domain.startswith(prefix) and len(domain) > len(prefix):
        return domain[len(prefix) :]
    return "cluster.local"


def parse_node(node: Node) -> tuple[Workload, str]:
    """The proxy's identity and its own IP ("" when the node does not say)."""
    metadata = node.metadata
    labels_value = metadata.fields.get("LABELS")
    labels = labels_value.struct_value if labels_value is not None and labels_value.HasField("struct_value") else None
    istio = _split_istio_id(node.id)
    kind, ip, id_pod, id_namespace, domain = istio if istio is not None else ("", "", "", "", "")

    pod = _string(metadata, "NAME") or id_pod
    namespace = _string(metadata, "NAMESPACE") or id_namespace or domain.partition(".")[0]
    workload_name = _string(metadata, "WORKLOAD_NAME")
    if not ip:
        ip = _string(metadata, "INSTANCE_IPS").partition(",")[0].strip()

    principal = UNKNOWN
    service_account = _string(metadata, "SERVICE_ACCOUNT")
    if service_account and namespace:
        principal = f"spiffe://{_trust_domain(metadata, domain, namespace)}/ns/{namespace}/sa/{service_account}"
    # Explicit labels win; a Kubernetes workload without them gets app and version from its name, by
    # the same rules as a log file's path (telemetry.envoy.workloads).
    app = _first_label(labels, _APP_LABELS) or None
    version = _first_label(labels, _VERSION_LABELS) or None
    gateway = kind == GATEWAY_TYPE
    if workload_name:
        workload = workload_named(
            workload_name, namespace, app=app, version=version, principal=principal, gateway=gateway
        )
    elif pod:
        workload = workload_from_pod(pod, namespace, app=app, version=version, principal=principal, gateway=gateway)
    else:
        # A plain Envoy (no Istio): named by its cluster, else its id; nothing to derive labels from.
        name = node.cluster or (node.id if istio is None else "")
        if not name:
            raise ParseError("bad_node", f"node {node.id!r} names no workload (no id, cluster or metadata NAME)")
        workload = Workload(
            name=name,
            namespace=namespace or UNKNOWN,
            app=app or UNKNOWN,
            version=version or UNKNOWN,
            principal=principal,
            gateway=gateway,
        )
    return workload, ip
