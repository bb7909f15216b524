"""Config of the Zipkin v2 receiver."""

from __future__ import annotations

from dataclasses import dataclass

from telemetry.receivers.httpbody import DEFAULT_MAX_BODY_BYTES
from telemetry.receivers.httpserver import config_errors


@dataclass
class ZipkinConfig:
    enabled: bool = True
    endpoint: str = "127.0.0.1:9411"  # host:port; port 0 picks a free one
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # after decompression; the raw body is held to it too
    # Connections served at once (one thread each); more wait in the listen backlog.
    max_connections: int = 64

    def validate(self) -> list[str]:
        return config_errors(self.endpoint, self.max_body_bytes, self.max_connections)
