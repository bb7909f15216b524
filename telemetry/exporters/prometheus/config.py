"""Config of the Prometheus metrics sink."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from telemetry.endpoints import split_endpoint


@dataclass
class PrometheusConfig:
    LISTENER: ClassVar[bool] = True  # a server: its endpoint is listened on (telemetry.endpoints.listeners)
    enabled: bool = True
    endpoint: str = "127.0.0.1:9464"
    max_series_per_metric: int = 10_000

    def validate(self) -> list[str]:
        errors = []
        try:
            split_endpoint(self.endpoint, "endpoint")
        except ValueError as error:
            errors.append(str(error))
        if self.max_series_per_metric < 1:
            errors.append("max_series_per_metric: must be at least 1")
        return errors
