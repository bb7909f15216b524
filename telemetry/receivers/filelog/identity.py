"""Which proxy wrote a log file: from the ``workloads`` config, else from the Kubernetes log path.

The kubelet names container log files after the pod: ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/
N.log`` (and the ``/var/log/containers/<pod>_<namespace>_<container>-<id>.log`` links to them). A pod's
name is its controller's name plus generated suffixes, which are stripped to get the workload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatch

from telemetry.model import UNKNOWN, Workload
from telemetry.receivers.filelog.config import WorkloadMatch

GATEWAY_PREFIXES = ("istio-ingressgateway", "istio-egressgateway")

_PODS_PATH = re.compile(r"(?:^|/)pods/([^/_]+)_([^/_]+)_[^/]+/[^/]+/[^/]+$")
_CONTAINERS_PATH = re.compile(r"(?:^|/)containers/([^/_]+)_([^/_]+)_[^/]+-[0-9a-f]{64}\.log$")

# Kubernetes' generated-name alphabet (no vowels, no easily confused characters).
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
# Deployment: <name>-<pod-template-hash>-<suffix>. The hash is a uint32 spelled in the safe alphabet,
# practically always 6 to 10 characters; requiring 6 keeps "reviews-v2-xk2zq" from losing its "-v2".
_DEPLOYMENT_POD = re.compile(rf"^(.+)-{_SAFE}{{6,10}}-{_SAFE}{{5}}$")
_STATEFULSET_POD = re.compile(r"^(.+)-\d+$")
# DaemonSet, Job and bare ReplicaSet pods: <name>-<suffix>.
_SUFFIXED_POD = re.compile(rf"^(.+)-{_SAFE}{{5}}$")
_VERSION = re.compile(r"^(.+)-(v\d+)$")


def workload_of_pod(pod: str) -> str:
    for pattern in (_DEPLOYMENT_POD, _STATEFULSET_POD, _SUFFIXED_POD):
        match = pattern.match(pod)
        if match:
            return match.group(1)
    return pod


def app_and_version(workload: str) -> tuple[str, str]:
    """``reviews-v2`` -> (``reviews``, ``v2``); a name without a ``-vN`` tail -> (name, ``unknown``)."""
    match = _VERSION.match(workload)
    return (match.group(1), match.group(2)) if match else (workload, UNKNOWN)


def is_gateway(name: str) -> bool:
    return name.startswith(GATEWAY_PREFIXES)


def identity_from_path(path: str) -> Workload | None:
    match = _PODS_PATH.search(path)
    if match:
        namespace, pod = match.groups()
    else:
        match = _CONTAINERS_PATH.search(path)
        if match is None:
            return None
        pod, namespace = match.groups()
    workload = workload_of_pod(pod)
    app, version = app_and_version(workload)
    return Workload(name=workload, namespace=namespace, app=app, version=version, gateway=is_gateway(pod))


def identity_from_config(entry: WorkloadMatch) -> Workload:
    return Workload(
        name=entry.workload,
        namespace=entry.namespace,
        app=entry.app or entry.workload,
        version=entry.version,
        gateway=entry.gateway or is_gateway(entry.workload),
    )


def reporter_identity(path: str, workloads: Sequence[WorkloadMatch]) -> Workload:
    """The first ``workloads`` entry whose glob matches wins; then the Kubernetes path; else unknown."""
    for entry in workloads:
        if fnmatch(path, entry.glob):
            return identity_from_config(entry)
    return identity_from_path(path) or Workload()
