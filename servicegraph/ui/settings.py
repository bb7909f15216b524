"""Settings of the web UI (the collector's ``graph.ui``): where trace and dashboard links point, windows, refresh."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from servicegraph.durations import duration_errors, parse_duration


@dataclass
class UiSettings:
    jaeger_url: str = "http://127.0.0.1:16686"  # "" hides the Jaeger links
    zipkin_url: str = "http://127.0.0.1:9411"  # "" hides the Zipkin links
    grafana_url: str = "http://127.0.0.1:3000"  # "" hides the Grafana links
    default_window: str = "5m"
    windows: list[str] = field(default_factory=lambda: ["1m", "5m", "15m", "1h"])
    refresh_seconds: float = 5.0

    def validate(self) -> list[str]:
        errors = []
        for key in ("jaeger_url", "zipkin_url", "grafana_url"):
            errors.extend(_url_error(getattr(self, key), key))
        if not self.windows:
            errors.append("windows: at least one window is needed")
        for position, window in enumerate(self.windows):
            errors.extend(duration_errors(window, f"windows[{position}]"))
        errors.extend(duration_errors(self.default_window, "default_window"))
        if not 0.5 <= self.refresh_seconds <= 3600:
            errors.append(f"refresh_seconds: must be between 0.5 and 3600, got {self.refresh_seconds}")
        return errors

    def window_choices(self) -> list[str]:
        """The windows offered, shortest first, the default among them."""
        choices = {window: parse_duration(window) for window in [*self.windows, self.default_window]}
        return sorted(choices, key=choices.__getitem__)


def _url_error(url: str, key: str) -> list[str]:
    if not url:
        return []
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [f"{key}: expected an http:// or https:// URL (or empty to hide the links), got {url!r}"]
    return []
