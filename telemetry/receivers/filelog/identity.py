"""Which proxy wrote a log file: from the ``workloads`` config, else from the Kubernetes log path.

The kubelet names container log files after the pod: ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/
N.log`` (and the ``/var/log/containers/<pod>_<namespace>_<container>-<id>.log`` links to them). A pod's
name is its controller's name plus generated suffixes, which are stripped to get the workload by the
rules every receiver shares (``telemetry.envoy.workloads``), so a pod is the same Workload whether its
log file or its ALS stream or its spans name it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatch

from telemetry.envoy.workloads import app_and_version, is_gateway, workload_from_pod
from telemetry.model import Workload
from telemetry.receivers.filelog.config import WorkloadMatch

# app_and_version is re-exported for ``meshscope ingest --workload``.
__all__ = ["app_and_version", "identity_from_config", "identity_from_path", "reporter_identity"]

_PODS_PATH = re.compile(r"(?:^|/)pods/([^/_]+)_([^/_]+)_[^/]+/[^/]+/[^/]+$")
_CONTAINERS_PATH = re.compile(r"(?:^|/)containers/([^/_]+)_([^/_]+)_[^/]+-[0-9a-f]{64}\.log$")


def identity_from_path(path: str) -> Workload | None:
    match = _PODS_PATH.search(path)
    if match:
        namespace, pod = match.groups()
    else:
        match = _CONTAINERS_PATH.search(path)
        if match is None:
            return None
        pod, namespace = match.groups()
    return workload_from_pod(pod, namespace)


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
