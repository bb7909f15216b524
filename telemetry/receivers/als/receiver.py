"""The ALS receiver: a grpc server for envoy.service.accesslog.v3.AccessLogService."""

from __future__ import annotations

from telemetry.envoy.peers import PeerTable
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.service import RECEIVER, AccessLogService
from telemetry.receivers.grpcserver import GrpcServer
from telemetry.receivers.serving import ServingReceiver
from telemetry.security.auth import UNAUTHENTICATED
from telemetry.selfmetrics import SelfStats


class AlsReceiver(ServingReceiver):
    def __init__(self, config: AlsConfig, pipeline: Pipeline, stats: SelfStats, peers: PeerTable) -> None:
        service = AccessLogService(pipeline, stats, peers, backpressure_wait=config.backpressure_wait)
        self._server = GrpcServer(
            "ALS",
            config.endpoint,
            service.rpc_handler(),
            max_concurrent_rpcs=config.max_concurrent_streams,
            max_message_bytes=config.max_message_bytes,
            shutdown_grace=config.shutdown_grace,
            auth=config.auth,
            tls=config.tls,
            refused=lambda: stats.parse_error(RECEIVER, UNAUTHENTICATED),
        )
