"""The ALS receiver: a grpc server for envoy.service.accesslog.v3.AccessLogService."""

from __future__ import annotations

from telemetry.envoy.peers import PeerTable
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.service import AccessLogService
from telemetry.receivers.grpcserver import GrpcServer
from telemetry.receivers.serving import ServingReceiver
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
        )
