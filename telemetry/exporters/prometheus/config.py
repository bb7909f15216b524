"""Config of the Prometheus metrics sink."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PrometheusConfig:
    enabled: bool = True
    endpoint: str = "127.0.0.1:9464"
    max_series_per_metric: int = 10_000

    def validate(self) -> list[str]:
        return [] if self.max_series_per_metric >= 1 else ["max_series_per_metric: must be at least 1"]
