"""Health of a node or an edge from its error shares, with Kiali's default thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field

from servicegraph.model import DEGRADED, FAILING, HEALTH_ORDER, HEALTHY, IDLE, Health


@dataclass(frozen=True)
class Thresholds:
    """Percentages: ``failing`` at or above it; ``degraded`` at or above it, and above zero."""

    degraded: float
    failing: float

    def validate(self) -> list[str]:
        errors = []
        for name in ("degraded", "failing"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                errors.append(f"{name}: must be a percentage between 0 and 100, got {value}")
        if self.degraded > self.failing:
            errors.append(f"degraded: must not exceed failing ({self.failing}), got {self.degraded}")
        return errors

    def judge(self, pct: float) -> Health:
        if pct >= self.failing and pct > 0:
            return FAILING
        if pct >= self.degraded and pct > 0:
            return DEGRADED
        return HEALTHY


@dataclass(frozen=True)
class HealthConfig:
    """Kiali's defaults: any 5xx is degraded and 10% failing; 4xx degraded at 10%, failing at 20%;
    gRPC errors like 5xx. "Errors" include requests that got no response at all."""

    http_5xx: Thresholds = field(default_factory=lambda: Thresholds(degraded=0.0, failing=10.0))
    http_4xx: Thresholds = field(default_factory=lambda: Thresholds(degraded=10.0, failing=20.0))
    grpc: Thresholds = field(default_factory=lambda: Thresholds(degraded=0.0, failing=10.0))

    def judge(self, protocol: str, requests: float, error_pct: float, client_error_pct: float) -> Health:
        if requests <= 0:
            return IDLE
        if protocol == "tcp":
            return HEALTHY
        if protocol == "grpc":
            return self.grpc.judge(error_pct)
        return worst(self.http_5xx.judge(error_pct), self.http_4xx.judge(client_error_pct))


def worst(*states: Health) -> Health:
    return max(states, key=HEALTH_ORDER.__getitem__, default=IDLE)
