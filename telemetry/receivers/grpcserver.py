"""A grpc server's lifecycle, shared by the gRPC receivers: bind (or fail loudly), serve, stop within bounds.

With an ``auth`` token every call must carry ``authorization: Bearer <token>`` metadata (else
UNAUTHENTICATED, counted as the receiver's parse error ``unauthenticated``); with ``tls`` the port
speaks TLS only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from typing import NoReturn

import grpc

from telemetry.security.auth import BearerAuth
from telemetry.security.config import AuthConfig, TlsConfig
from telemetry.security.grpc_auth import BearerTokenInterceptor
from telemetry.security.tls import grpc_credentials

log = logging.getLogger(__name__)

# How long past its grace period a stop may take before it is given up on with a warning.
_STOP_MARGIN = 5.0


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """End a call with ``code``: ServicerContext.abort raises, and this says so to type checkers."""
    context.abort(code, details)
    raise AssertionError("ServicerContext.abort returned")


class GrpcServer:
    def __init__(
        self,
        name: str,
        endpoint: str,
        handler: grpc.GenericRpcHandler,
        max_concurrent_rpcs: int,
        max_message_bytes: int,
        shutdown_grace: float,
        auth: AuthConfig | None = None,
        tls: TlsConfig | None = None,
        refused: Callable[[], None] = lambda: None,
    ) -> None:
        """``refused`` is called once per call refused for want of a valid token."""
        self._name = name
        self._endpoint = endpoint
        self._handler = handler
        self._max_rpcs = max_concurrent_rpcs
        self._max_message_bytes = max_message_bytes
        self._grace = shutdown_grace
        self._auth = BearerAuth(auth) if auth is not None and auth.enabled else None
        self._tls = tls if tls is not None and tls.enabled else None
        self._refused = refused
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._port = 0
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def port(self) -> int:
        """The bound port (known after start(); 0 before)."""
        return self._port

    def start(self) -> None:
        with self._lock:
            if self._server is not None or self._stopped:
                raise RuntimeError(f"{self._name} server: start() may be called once, before shutdown()")
            credentials = grpc_credentials(self._tls, f"{self._name} receiver") if self._tls is not None else None
            interceptors = [BearerTokenInterceptor(self._auth, self._refused)] if self._auth is not None else []
            executor = futures.ThreadPoolExecutor(
                max_workers=self._max_rpcs, thread_name_prefix=f"meshscope-{self._name}"
            )
            server = grpc.server(
                executor,
                # Calls beyond the thread pool are refused (RESOURCE_EXHAUSTED) instead of queueing
                # behind long-lived streams.
                maximum_concurrent_rpcs=self._max_rpcs,
                interceptors=interceptors,
                options=[
                    ("grpc.max_receive_message_length", self._max_message_bytes),
                    # grpc shares a port between servers by default; a second collector must fail instead.
                    ("grpc.so_reuseport", 0),
                ],
            )
            server.add_generic_rpc_handlers((self._handler,))
            try:
                # Older grpcio returns 0 when it cannot bind, newer raises.
                if credentials is None:
                    port = server.add_insecure_port(self._endpoint)
                else:
                    port = server.add_secure_port(self._endpoint, credentials)
                failure = ""
            except RuntimeError as error:
                port, failure = 0, f": {error}"
            if not port:
                executor.shutdown(wait=False)
                raise OSError(f"{self._name} receiver cannot listen on {self._endpoint}{failure}")
            server.start()
            self._server, self._executor, self._port = server, executor, port

    def shutdown(self) -> None:
        """Stop accepting calls, give open ones the grace period, then cancel them. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server, executor = self._server, self._executor
        if server is None or executor is None:
            return
        # The bounded wait keeps a call stuck inside grpc from holding the collector's shutdown forever.
        if not server.stop(self._grace).wait(self._grace + _STOP_MARGIN):
            log.warning("%s server did not stop within %.1f s of its grace period", self._name, _STOP_MARGIN)
        # grpc leaves the executor it was given running.
        executor.shutdown(wait=False)
