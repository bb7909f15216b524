"""Pod name -> Workload: the one set of rules every receiver names a Kubernetes proxy by.

A pod's name is its controller's name plus generated suffixes:

- Deployment (via its ReplicaSet): ``<name>-<pod-template-hash>-<suffix>``, e.g.
  ``reviews-v2-7bf8c9648f-xk2zq``; the hash is a uint32 spelled in Kubernetes' generated-name alphabet,
  practically always 6 to 10 characters, and the suffix is 5 characters of the same alphabet;
- StatefulSet: ``<name>-<ordinal>``, e.g. ``mysql-0``;
- DaemonSet, Job and bare ReplicaSet: ``<name>-<suffix>``, e.g. ``fluentd-x7k2p``.

The suffixes are stripped to get the workload; a name that matches none of them is kept. A workload
name ending in a ``-vN`` version (``reviews-v2``) gives the app (``reviews``) and the version (``v2``),
which stand in for the ``app``/``version`` labels when nothing says them explicitly: explicit metadata
(an ALS node's LABELS, Istio's canonical name/revision, a span's ``istio.canonical_*`` tags) wins.

Whichever receiver sees a pod -- a log file's path, an ALS node id, a span's node id -- must name it
the same way, or its series split and the peer table keeps replacing one Workload with another.
"""

from __future__ import annotations

import re

from telemetry.model import UNKNOWN, Workload

GATEWAY_PREFIXES = ("istio-ingressgateway", "istio-egressgateway")

# Kubernetes' generated-name alphabet (k8s.io/apimachinery/pkg/util/rand): no vowels and no easily
# confused characters, so matching it exactly keeps names like "reviews-proxy" intact.
K8S_RAND = "[bcdfghjklmnpqrstvwxz2456789]"
# Requiring a hash of at least 6 characters keeps "reviews-v2-xk2zq" from losing its "-v2".
_DEPLOYMENT_POD = re.compile(rf"^(.+)-{K8S_RAND}{{6,10}}-{K8S_RAND}{{5}}$")
_STATEFULSET_POD = re.compile(r"^(.+)-\d+$")
_SUFFIXED_POD = re.compile(rf"^(.+)-{K8S_RAND}{{5}}$")
_POD_PATTERNS = (_DEPLOYMENT_POD, _STATEFULSET_POD, _SUFFIXED_POD)
_VERSION = re.compile(r"^(.+)-(v\d+)$")


def workload_of_pod(pod: str) -> str:
    """``reviews-v2-7bf8c9648f-xk2zq`` -> ``reviews-v2``, ``mysql-0`` -> ``mysql``, ``fluentd-x7k2p`` ->
    ``fluentd``; a name without a generated suffix is kept."""
    for pattern in _POD_PATTERNS:
        match = pattern.match(pod)
        if match:
            return match.group(1)
    return pod


def app_and_version(workload: str) -> tuple[str, str]:
    """``reviews-v2`` -> (``reviews``, ``v2``); a name without a ``-vN`` tail -> (name, ``unknown``)."""
    match = _VERSION.match(workload)
    return (match.group(1), match.group(2)) if match else (workload, UNKNOWN)


def is_gateway(name: str) -> bool:
    """Whether a pod or workload name is Istio's ingress or egress gateway's."""
    return name.startswith(GATEWAY_PREFIXES)


def workload_named(
    name: str,
    namespace: str,
    *,
    app: str | None = None,
    version: str | None = None,
    principal: str = UNKNOWN,
    gateway: bool = False,
) -> Workload:
    """A Kubernetes workload by its name: ``app``/``version`` given (non-empty) win over the derived."""
    derived_app, derived_version = app_and_version(name)
    return Workload(
        name=name,
        namespace=namespace or UNKNOWN,
        app=app or derived_app,
        version=version or derived_version,
        principal=principal,
        gateway=gateway or is_gateway(name),
    )


def workload_from_pod(
    pod: str,
    namespace: str,
    *,
    app: str | None = None,
    version: str | None = None,
    principal: str = UNKNOWN,
    gateway: bool = False,
) -> Workload:
    """The Workload of pod ``pod`` in ``namespace``; explicit ``app``/``version`` win over the derived."""
    return workload_named(
        workload_of_pod(pod), namespace, app=app, version=version, principal=principal, gateway=gateway
    )
