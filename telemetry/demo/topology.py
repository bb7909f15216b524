"""The simulated Bookinfo mesh: its pods, with fixed fake addresses and Kubernetes-shaped names."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

# Kubernetes draws generated name parts from this vowel-less alphabet.
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TRUST_DOMAIN = "cluster.local"


def _k8s_suffix(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_K8S_ALPHABET[byte % len(_K8S_ALPHABET)] for byte in digest[:length])


@dataclass(frozen=True, slots=True)
class Pod:
    workload: str  # Deployment name, e.g. reviews-v2
    namespace: str
    app: str
    version: str
    service: str  # the Service in front of it
    port: int  # the port the app listens on, which is also the Service port
    pod_ip: str
    service_ip: str
    service_account: str
    protocol: str = "http"  # http | grpc | tcp
    gateway: bool = False
    pod_name: str = ""
    uid: str = ""

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"

    @property
    def principal(self) -> str:
        return f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def log_dir_name(self) -> str:
        """Kubelet's folder for the pod under /var/log/pods: NAMESPACE_POD_UID."""
        return f"{self.namespace}_{self.pod_name}_{self.uid}"

    @property
    def node_id(self) -> str:
        kind = "router" if self.gateway else "sidecar"
        return f"{kind}~{self.pod_ip}~{self.pod_name}.{self.namespace}~{self.namespace}.svc.cluster.local"


@dataclass(frozen=True, slots=True)
class ExternalHost:
    host: str
    ip: str
    port: int


def _pod(
    workload: str,
    app: str,
    version: str,
    pod_ip: str,
    service_ip: str,
    *,
    namespace: str = "default",
    port: int = 9080,
    protocol: str = "http",
    service_account: str = "",
    gateway: bool = False,
) -> Pod:
    # A Deployment's pods are named DEPLOYMENT-<pod-template-hash>-<5 chars>; derived from the name so
    # every run writes to the same paths.
    pod_name = f"{workload}-{_k8s_suffix(workload + '/rs', 10)}-{_k8s_suffix(workload + '/pod', 5)}"
    uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"meshscope-demo/{namespace}/{pod_name}"))
    return Pod(
        workload=workload,
        namespace=namespace,
        app=app,
        version=version,
        service=app,
        port=port,
        pod_ip=pod_ip,
        service_ip=service_ip,
        service_account=service_account or f"bookinfo-{app}",
        protocol=protocol,
        gateway=gateway,
        pod_name=pod_name,
        uid=uid,
    )


GATEWAY = _pod(
    "istio-ingressgateway",
    "istio-ingressgateway",
    "unknown",
    "10.244.0.10",
    "10.96.120.15",
    namespace="istio-system",
    port=8080,
    service_account="istio-ingressgateway-service-account",
    gateway=True,
)
PRODUCTPAGE = _pod("productpage-v1", "productpage", "v1", "10.244.0.11", "10.96.45.10")
DETAILS = _pod("details-v1", "details", "v1", "10.244.0.12", "10.96.45.20", protocol="grpc")
REVIEWS_V1 = _pod("reviews-v1", "reviews", "v1", "10.244.0.13", "10.96.45.30")
REVIEWS_V2 = _pod("reviews-v2", "reviews", "v2", "10.244.0.14", "10.96.45.30")
REVIEWS_V3 = _pod("reviews-v3", "reviews", "v3", "10.244.0.15", "10.96.45.30")
RATINGS = _pod("ratings-v1", "ratings", "v1", "10.244.0.16", "10.96.45.40")
MYSQLDB = _pod(
    "mysqldb-v1",
    "mysqldb",
    "v1",
    "10.244.0.17",
    "10.96.45.50",
    port=3306,
    protocol="tcp",
)
EXTERNAL = ExternalHost("api.external.example", "203.0.113.10", 443)

PODS: tuple[Pod, ...] = (
    GATEWAY,
    PRODUCTPAGE,
    DETAILS,
    REVIEWS_V1,
    REVIEWS_V2,
    REVIEWS_V3,
    RATINGS,
    MYSQLDB,
)
PODS_BY_WORKLOAD: dict[str, Pod] = {pod.workload: pod for pod in PODS}
REVIEWS: dict[str, Pod] = {pod.version: pod for pod in (REVIEWS_V1, REVIEWS_V2, REVIEWS_V3)}

# Where the gateway's clients come from (TEST-NET-1, as seen by the gateway after the load balancer).
CLIENT_NETWORK = "192.0.2."
