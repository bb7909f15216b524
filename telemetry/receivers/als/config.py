"""Config of the Envoy gRPC Access Log Service receiver."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AlsConfig:
    enabled: bool = True
    endpoint: str = "127.0.0.1:9001"
    max_message_bytes: int = 4 * 1024 * 1024
    max_concurrent_streams: int = 256
