"""Config of the service graph: its windows, health thresholds, span pairing, source and API endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from servicegraph.durations import parse_duration
from servicegraph.health import HealthConfig
from servicegraph.spanpairs import SpanPairingConfig
from telemetry.endpoints import split_endpoint

LIVE = "live"
PROMETHEUS_PREFIX = "prometheus="


@dataclass
class GraphConfig:
    enabled: bool = True
    endpoint: str = "127.0.0.1:8050"  # the HTTP API (and the UI)
    source: str = LIVE  # "live": this collector's own traffic; "prometheus=URL": any Prometheus
    prometheus_selector: str = ""  # label matchers added to every query, e.g. job="mesh",cluster="east"
    windows: list[str] = field(default_factory=lambda: ["1m", "5m", "15m", "1h"])
    default_window: str = "5m"
    points_per_window: int = 12  # chart points per window, and the windows' sliding granularity
    resolution: float = 2.0  # seconds between reads of the collector's counters
    idle_expiry: str = "1h"  # an edge without traffic for this long leaves the graph
    health: HealthConfig = field(default_factory=HealthConfig)
    span_pairing: SpanPairingConfig = field(default_factory=SpanPairingConfig)
    max_span_pair_series: int = 10_000

    def validate(self) -> list[str]:
        errors = []
        try:
            split_endpoint(self.endpoint, "endpoint")
        except ValueError as error:
            errors.append(str(error))
        if self.source != LIVE and not (self.source.startswith(PROMETHEUS_PREFIX) and len(self.source) > 11):
            errors.append(f"source: expected 'live' or 'prometheus=URL', got {self.source!r}")
        for position, window in enumerate(self.windows):
            errors.extend(_duration_error(window, f"windows[{position}]"))
        if not self.windows:
            errors.append("windows: at least one window is needed")
        errors.extend(_duration_error(self.default_window, "default_window"))
        errors.extend(_duration_error(self.idle_expiry, "idle_expiry"))
        if self.points_per_window < 2:
            errors.append("points_per_window: must be at least 2")
        if not self.resolution > 0:
            errors.append("resolution: must be positive")
        if self.max_span_pair_series < 1:
            errors.append("max_span_pair_series: must be at least 1")
        return errors

    @property
    def window_seconds(self) -> list[float]:
        return sorted({parse_duration(window) for window in self.windows})

    @property
    def prometheus_url(self) -> str:
        return self.source[len(PROMETHEUS_PREFIX) :] if self.source.startswith(PROMETHEUS_PREFIX) else ""


def _duration_error(value: str, key: str) -> list[str]:
    try:
        parse_duration(value, key)
    except ValueError as error:
        return [str(error)]
    return []
