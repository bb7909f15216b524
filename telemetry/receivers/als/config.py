"""Config of the Envoy gRPC Access Log Service receiver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from telemetry.security.config import AuthConfig, TlsConfig


@dataclass
class AlsConfig:
    LISTENER: ClassVar[bool] = True  # a server: its endpoint is listened on (telemetry.endpoints.listeners)
    enabled: bool = True
    endpoint: str = "127.0.0.1:9001"  # host:port; port 0 picks a free one
    max_message_bytes: int = 4 * 1024 * 1024
    # Envoy holds each stream open for as long as it runs, one per access logger and worker thread:
    # this bounds how many can be served at once (each holds one server thread).
    max_concurrent_streams: int = 256
    # How long a message waits for room in a full pipeline before its stream is refused. The stream is not
    # read meanwhile, so HTTP/2 flow control holds Envoy back (see service.py).
    backpressure_wait: float = 10.0
    # How long open streams get to finish at shutdown before they are cancelled.
    shutdown_grace: float = 2.0
    # Optional: every stream must carry ``authorization: Bearer <token>`` metadata (Envoy's grpc_service
    # initial_metadata sets it); TLS from a certificate and key.
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)

    def validate(self) -> list[str]:
        errors = []
        host, colon, port = self.endpoint.rpartition(":")
        if not colon or not host or not port.isdigit() or int(port) > 65535:
            errors.append(f"endpoint: expected host:port, got {self.endpoint!r}")
        if self.max_message_bytes < 1:
            errors.append("max_message_bytes: must be at least 1")
        if self.max_concurrent_streams < 1:
            errors.append("max_concurrent_streams: must be at least 1")
        if self.backpressure_wait < 0:
            errors.append("backpressure_wait: must not be negative")
        if self.shutdown_grace < 0:
            errors.append("shutdown_grace: must not be negative")
        return errors
