"""Config of the service graph: its windows, health thresholds, span pairing, source and API endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from servicegraph.durations import duration_errors, parse_duration
from servicegraph.health import HealthConfig
from servicegraph.spanpairs import SpanPairingConfig
from servicegraph.ui.settings import UiSettings
from telemetry.endpoints import split_endpoint
from telemetry.security.config import AuthConfig, TlsConfig

LIVE = "live"
PROMETHEUS_PREFIX = "prometheus="


@dataclass
class GraphConfig:
    LISTENER: ClassVar[bool] = True  # a server: its endpoint is listened on (telemetry.endpoints.listeners)
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
    ui: UiSettings = field(default_factory=UiSettings)  # the web page on the same endpoint
    ui_enabled: bool = True
    # Optional, for the API and the UI alike: a bearer token (a browser opens /?token=... once) and TLS.
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)

    def validate(self) -> list[str]:
        errors = []
        try:
            split_endpoint(self.endpoint, "endpoint")
        except ValueError as error:
            errors.append(str(error))
        if self.source != LIVE and not (self.source.startswith(PROMETHEUS_PREFIX) and len(self.source) > 11):
            errors.append(f"source: expected 'live' or 'prometheus=URL', got {self.source!r}")
        for position, window in enumerate(self.windows):
            errors.extend(duration_errors(window, f"windows[{position}]"))
        if not self.windows:
            errors.append("windows: at least one window is needed")
        errors.extend(duration_errors(self.default_window, "default_window"))
        errors.extend(duration_errors(self.idle_expiry, "idle_expiry"))
        if self.points_per_window < 2:
            errors.append("points_per_window: must be at least 2")
        if not self.resolution > 0:
            errors.append("resolution: must be positive")
        if self.max_span_pair_series < 1:
            errors.append("max_span_pair_series: must be at least 1")
        # The UI's windows are the graph's: one place to set them.
        if self.ui.windows != UiSettings().windows or self.ui.default_window != UiSettings().default_window:
            errors.append("ui.windows, ui.default_window: set graph.windows and graph.default_window instead")
        return errors

    def ui_settings(self) -> UiSettings:
        return replace(self.ui, windows=list(self.windows), default_window=self.default_window)

    @property
    def window_seconds(self) -> list[float]:
        return sorted({parse_duration(window) for window in self.windows})

    @property
    def prometheus_url(self) -> str:
        return self.source[len(PROMETHEUS_PREFIX) :] if self.source.startswith(PROMETHEUS_PREFIX) else ""
