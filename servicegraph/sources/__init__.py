"""Where a graph's traffic comes from: the live collector's own metrics, or any Prometheus."""

from __future__ import annotations

from typing import Protocol

from servicegraph.traffic import Traffic


class GraphSource(Protocol):
    def traffic(self, window: float, end: float | None = None) -> Traffic:
        """Totals per label set over the ``window`` seconds before ``end`` (default: now)."""
        ...

    def traffic_series(self, window: float, points: int, end: float | None = None) -> list[Traffic]:
        """The same window cut into about ``points`` consecutive intervals, oldest first, for charts."""
        ...
