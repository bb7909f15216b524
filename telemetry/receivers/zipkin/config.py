"""Config of the Zipkin v2 receiver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from telemetry.receivers.httpbody import DEFAULT_MAX_BODY_BYTES
from telemetry.receivers.httpserver import config_errors
from telemetry.security.config import AuthConfig, TlsConfig


@dataclass
class ZipkinConfig:
    LISTENER: ClassVar[bool] = True  # a server: its endpoint is listened on (telemetry.endpoints.listeners)
    enabled: bool = True
    endpoint: str = "127.0.0.1:9411"  # host:port; port 0 picks a free one
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # after decompression; the raw body is held to it too
    # Connections served at once (one thread each); more wait in the listen backlog.
    max_connections: int = 64
    # Optional: every request must carry ``Authorization: Bearer <token>``; TLS from a certificate and key.
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)

    def validate(self) -> list[str]:
        return config_errors(self.endpoint, self.max_body_bytes, self.max_connections)
