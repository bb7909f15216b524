"""The ALS receiver: a grpc server for envoy.service.accesslog.v3.AccessLogService."""

from __future__ import annotations

import logging
import threading
from concurrent import futures

import grpc

from telemetry.envoy.peers import PeerTable
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.service import AccessLogService
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

_STOP_MARGIN = 5.0


class AlsReceiver:
    def __init__(self, config: AlsConfig, pipeline: Pipeline, stats: SelfStats, peers: PeerTable) -> None:
        self._config = config
        self._service = AccessLogService(pipeline, stats, peers, backpressure_wait=config.backpressure_wait)
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._port = 0
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def port(self) -> int:
        """The port the server is bound to (known after start(); 0 before)."""
        return self._port

    def start(self) -> None:
        config = self._config
        with self._lock:
            if self._server is not None or self._stopped:
                raise RuntimeError("AlsReceiver.start() may be called once, before shutdown()")
            executor = futures.ThreadPoolExecutor(
                max_workers=config.max_concurrent_streams, thread_name_prefix="meshscope-als"
            )
            server = grpc.server(
                executor,
                # Streams beyond the thread pool are refused (RESOURCE_EXHAUSTED) instead of queueing
                # behind streams that never end.
                maximum_concurrent_rpcs=config.max_concurrent_streams,
                options=[
                    ("grpc.max_receive_message_length", config.max_message_bytes),
                    # grpc shares a port between servers by default; a second collector must fail instead.
                    ("grpc.so_reuseport", 0),
                ],
            )
            server.add_generic_rpc_handlers((self._service.rpc_handler(),))
            try:
                # Older grpcio returns 0 when it cannot bind, newer raises.
                port = server.add_insecure_port(config.endpoint)
                failure = ""
            except RuntimeError as error:
                port, failure = 0, f": {error}"
            if not port:
                executor.shutdown(wait=False)
                raise OSError(f"ALS receiver cannot listen on {config.endpoint}{failure}")
            server.start()
            self._server = server
            self._executor = executor
            self._port = port

    def shutdown(self) -> None:
        """Stop accepting streams, give open ones the grace period, then cancel them. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server, executor = self._server, self._executor
        if server is None or executor is None:
            return
        grace = self._config.shutdown_grace
        # Calls are cancelled once the grace period ends; the bounded wait keeps a stuck call in grpc
        # from holding the collector's shutdown forever.
        if not server.stop(grace).wait(grace + _STOP_MARGIN):
            log.warning("ALS server did not stop within %.1f s of its grace period", _STOP_MARGIN)
        # grpc leaves the executor it was given running.
        executor.shutdown(wait=False)
