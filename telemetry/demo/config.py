"""What the simulated mesh does: request rate, traffic shape, and Istio-style fault injection."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Delay:
    """A VirtualService ``fault.delay``: hold ``percentage`` % of matching requests for ``fixed_delay_ms``."""

    percentage: float = 100.0
    fixed_delay_ms: int = 2000


@dataclass
class Abort:
    """A VirtualService ``fault.abort``: answer ``percentage`` % of matching requests with ``http_status``."""

    percentage: float = 10.0
    http_status: int = 503


@dataclass
class FaultRule:
    """A fault on the calls it selects; an empty selector matches everything.

    As in Istio the fault filter runs in the calling proxy: an aborted call never reaches the server.
    """

    destination: str = ""  # called service's short name, e.g. "ratings"
    subset: str = ""  # destination subset (version), e.g. "v3"
    source: str = ""  # calling app, e.g. "reviews"
    route: str = ""  # request path prefix, e.g. "/ratings"
    delay: Delay | None = None
    abort: Abort | None = None

    def matches(self, source_app: str, destination: str, subset: str, path: str) -> bool:
        return (
            (not self.destination or self.destination == destination)
            and (not self.subset or self.subset == subset)
            and (not self.source or self.source == source_app)
            and (not self.route or path.startswith(self.route))
        )

    def validate(self) -> list[str]:
        errors = []
        if self.delay is None and self.abort is None:
            errors.append("one of delay, abort: required")
        for name, part in (("delay", self.delay), ("abort", self.abort)):
            if part is not None and not 0 <= part.percentage <= 100:
                errors.append(f"{name}.percentage: must be between 0 and 100")
        if self.delay is not None and self.delay.fixed_delay_ms < 0:
            errors.append("delay.fixed_delay_ms: must not be negative")
        if self.abort is not None and not 200 <= self.abort.http_status <= 599:
            errors.append("abort.http_status: must be an HTTP status")
        return errors


def default_faults() -> list[FaultRule]:
    """reviews-v3 is slow (every call delayed 2 s); ratings fails one call in ten with 503."""
    return [
        FaultRule(destination="reviews", subset="v3", delay=Delay(100.0, 2000)),
        FaultRule(destination="ratings", abort=Abort(10.0, 503)),
    ]


@dataclass
class DemoConfig:
    rate: float = 20.0  # requests per second at the ingress gateway
    duration: float | None = None  # seconds; None runs until shutdown
    seed: int = 42
    faults: list[FaultRule] = field(default_factory=default_faults)
    reviews_weights: dict[str, float] = field(default_factory=lambda: {"v1": 1.0, "v2": 1.0, "v3": 1.0})
    not_found_share: float = 0.03  # gateway requests for a product productpage does not know (404)
    upstream_failure_share: float = 0.005  # calls whose connection fails (UF,URX) regardless of faults
    external_share: float = 0.05  # productpage requests that also call api.external.example
    mysql_connection_share: float = 0.2  # ratings requests that open a connection to mysqldb
    batch_interval: float = 0.1  # seconds between the writer thread's batches
    als_batch_size: int = 100
    als_flush_interval: float = 0.2
    als_queue_size: int = 10_000
    span_batch_size: int = 200  # Zipkin spans per POST, at most
    span_flush_interval: float = 0.2  # seconds a partial batch of spans waits
    span_queue_size: int = 10_000  # requests waiting to become spans; beyond it they are dropped, counted

    def validate(self) -> list[str]:
        errors = []
        if self.rate <= 0:
            errors.append("rate: must be positive")
        if self.duration is not None and self.duration < 0:
            errors.append("duration: must not be negative")
        if self.batch_interval <= 0:
            errors.append("batch_interval: must be positive")
        for name in ("span_batch_size", "span_flush_interval", "span_queue_size"):
            if getattr(self, name) <= 0:
                errors.append(f"{name}: must be positive")
        if (
            not self.reviews_weights
            or any(w < 0 for w in self.reviews_weights.values())
            or not any(self.reviews_weights.values())
        ):
            errors.append("reviews_weights: need a positive weight")
        unknown = set(self.reviews_weights) - {"v1", "v2", "v3"}
        if unknown:
            errors.append(f"reviews_weights: unknown subsets {sorted(unknown)}")
        for name in (
            "not_found_share",
            "upstream_failure_share",
            "external_share",
            "mysql_connection_share",
        ):
            if not 0 <= getattr(self, name) <= 1:
                errors.append(f"{name}: must be between 0 and 1")
        for index, fault in enumerate(self.faults):
            errors.extend(f"faults[{index}].{error}" for error in fault.validate())
        return errors
