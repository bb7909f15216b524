"""A simulated Bookinfo mesh: Istio access logs (files, and optionally gRPC ALS) with fault injection.

Protocols: productpage -> details is gRPC. Istio's text format has no gRPC status, so in the files it
shows as an HTTP/2 POST; the entries' ``grpc_status`` field (and the ALS stream's ``grpc-status``
trailer) carry it, and any custom format with ``%GRPC_STATUS%`` or ``%RESP(GRPC-STATUS)%`` prints it.
ratings -> mysqldb (occasional connections) and productpage -> api.external.example (through
PassthroughCluster, TLS originated by the app) are TCP.
"""

from telemetry.demo.bench import benchmark_lines, write_benchmark_lines
from telemetry.demo.config import Abort, Delay, DemoConfig, FaultRule, default_faults
from telemetry.demo.entries import (
    DESTINATION,
    SOURCE,
    EntryGenerator,
    LogEntry,
    generate,
)
from telemetry.demo.files import pod_log_path
from telemetry.demo.mesh import ALS_POD, SimulatedMesh
from telemetry.demo.topology import EXTERNAL, PODS, PODS_BY_WORKLOAD, ExternalHost, Pod

__all__ = [
    "ALS_POD",
    "DESTINATION",
    "EXTERNAL",
    "PODS",
    "PODS_BY_WORKLOAD",
    "SOURCE",
    "Abort",
    "Delay",
    "DemoConfig",
    "EntryGenerator",
    "ExternalHost",
    "FaultRule",
    "LogEntry",
    "Pod",
    "SimulatedMesh",
    "benchmark_lines",
    "default_faults",
    "generate",
    "pod_log_path",
    "write_benchmark_lines",
]
