"""Config of the OTLP trace receivers: gRPC (4317) and HTTP (4318), each enabled on its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from telemetry.endpoints import split_endpoint
from telemetry.receivers.httpbody import DEFAULT_MAX_BODY_BYTES
from telemetry.receivers.httpserver import config_errors
from telemetry.security.config import AuthConfig, TlsConfig


@dataclass
class OtlpGrpcConfig:
    LISTENER: ClassVar[bool] = True  # a server: its endpoint is listened on (telemetry.endpoints.listeners)
    enabled: bool = True
    endpoint: str = "127.0.0.1:4317"  # host:port; port 0 picks a free one
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # one Export request, after decompression
    # Requests served at once; more are refused by grpc with RESOURCE_EXHAUSTED.
    max_concurrent_requests: int = 32
    # Optional: every request must carry ``Authorization: Bearer <token>``; TLS from a certificate and key.
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)

    def validate(self) -> list[str]:
        errors = []
        try:
            split_endpoint(self.endpoint)
        except ValueError:
            errors.append(f"endpoint: expected host:port, got {self.endpoint!r}")
        if self.max_body_bytes < 1:
            errors.append("max_body_bytes: must be at least 1")
        if self.max_concurrent_requests < 1:
            errors.append("max_concurrent_requests: must be at least 1")
        return errors


@dataclass
class OtlpHttpConfig:
    LISTENER: ClassVar[bool] = True  # a server: its endpoint is listened on (telemetry.endpoints.listeners)
    enabled: bool = True
    endpoint: str = "127.0.0.1:4318"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # after decompression; the raw body is held to it too
    # Connections served at once (one thread each); more wait in the listen backlog.
    max_connections: int = 64
    # Optional: every request must carry ``Authorization: Bearer <token>``; TLS from a certificate and key.
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)

    def validate(self) -> list[str]:
        return config_errors(self.endpoint, self.max_body_bytes, self.max_connections)


@dataclass
class OtlpConfig:
    grpc: OtlpGrpcConfig = field(default_factory=OtlpGrpcConfig)
    http: OtlpHttpConfig = field(default_factory=OtlpHttpConfig)
