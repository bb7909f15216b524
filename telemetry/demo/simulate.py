"""The simulated requests: one gateway request becomes a tree of calls with consistent timing.

Nothing sleeps. Each call's timing is computed: a server's time covers its own work plus its calls
made one after another, and the client's time covers the server's plus the network and any injected
delay, so a parent always lasts at least as long as each of its children. Times are milliseconds
relative to the request's origin; the caller places the origin on the wall clock afterwards.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from telemetry.demo.config import DemoConfig, FaultRule
from telemetry.demo.topology import (
    CLIENT_NETWORK,
    DETAILS,
    EXTERNAL,
    GATEWAY,
    MYSQLDB,
    PRODUCTPAGE,
    RATINGS,
    REVIEWS,
    ExternalHost,
    Pod,
)

HTTP11 = "HTTP/1.1"
HTTP2 = "HTTP/2"
NO_FLAGS = "-"

# Envoy answers a gRPC request's local reply (a fault abort, a failed upstream) as gRPC: HTTP 200
# with a grpc-status mapped from the HTTP status.
_GRPC_STATUS_OF_HTTP = {
    400: "13",
    401: "16",
    403: "7",
    404: "12",
    429: "14",
    502: "14",
    503: "14",
    504: "14",
}

_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "curl/8.5.0",
)
_GRPC_USER_AGENT = "grpc-python/1.62.1 grpc-c/39.0.0 (linux; chttp2)"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    trace_id: str
    client_ip: str  # the gateway's downstream client
    user_agent: str  # the end user's; Bookinfo's services forward it on every HTTP call they make
    not_found: bool = False  # a request for a product productpage does not know
    origin_ms: float = 0.0  # wall-clock epoch ms of the gateway's start; set after simulation


@dataclass(slots=True)
class Call:
    """One call as both proxies on it saw it: the client's outbound view, and the server's inbound view."""

    request: RequestContext
    source: Pod
    destination: Pod | None  # None: a host outside the mesh
    external: ExternalHost | None
    protocol: str  # http | grpc | tcp
    subset: str
    method: str
    path: str
    authority: str
    user_agent: str
    x_forwarded_for: str
    span_id: str
    start_ms: float  # at the client proxy, relative to the request origin
    duration_ms: float = 0.0
    upstream_service_ms: float | None = None  # client side: None when no upstream answered
    response_code: int = 200
    grpc_status: str = ""
    response_flags: str = NO_FLAGS
    response_code_details: str = "via_upstream"
    bytes_received: int = 0  # request bytes (the client proxy received them from its app)
    bytes_sent: int = 0  # response bytes
    downstream_port: int = 0  # the client app's (or external client's) port toward the client proxy
    upstream_port: int = 0  # the client proxy's port toward the server proxy
    inbound_port: int = 0  # the server proxy's port toward its app (from 127.0.0.6)
    server_start_ms: float | None = None  # None: the server never saw the call
    server_duration_ms: float = 0.0
    server_service_ms: float = 0.0

    @property
    def reached_server(self) -> bool:
        return self.server_start_ms is not None

    @property
    def service_port(self) -> int:
        return self.external.port if self.external is not None else self.destination.port  # type: ignore[union-attr]


# What a server does with a call: (its app's own time in ms incl. children, response code, response bytes).
Handler = Callable[["Simulator", RequestContext, Pod, float, list[Call]], tuple[float, int, int]]


class Simulator:
    """Simulates gateway requests. Deterministic for a given config (seed)."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self._faults: list[FaultRule] = list(config.faults)
        self._subsets = list(config.reviews_weights)
        self._weights = [config.reviews_weights[name] for name in self._subsets]

    def request(self) -> list[Call]:
        """One gateway request's calls, in the order their proxies finish them (children first)."""
        rng = self.rng
        context = RequestContext(
            request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            trace_id=f"{rng.getrandbits(128):032x}",
            client_ip=CLIENT_NETWORK + str(rng.randint(10, 60)),
            user_agent=rng.choice(_USER_AGENTS),
            not_found=rng.random() < self.config.not_found_share,
        )
        calls: list[Call] = []
        if context.not_found:
            path = f"/api/v1/products/{rng.randint(100, 999)}"
        else:
            path = "/productpage" if rng.random() < 0.8 else "/productpage?u=normal"
        self.call(
            context, calls, GATEWAY, PRODUCTPAGE, "", "GET", path, "bookinfo.example.com", 0.0,
            handler=_productpage, user_agent=context.user_agent, x_forwarded_for=context.client_ip,
        )  # fmt: skip
        return calls

    # -- building blocks for the service handlers below -------------------------------------------

    def reviews_subset(self) -> str:
        return self.rng.choices(self._subsets, self._weights)[0]

    def _port(self) -> int:
        return self.rng.randint(32768, 60999)

    def _span(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def between(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def _fault(self, source: Pod, service: str, subset: str, path: str) -> tuple[float, int]:
        """(injected delay ms, abort status or 0) for a call, drawn from the first matching rules."""
        delay, abort = 0.0, 0
        for rule in self._faults:
            if not rule.matches(source.app, service, subset, path):
                continue
            if rule.delay is not None and not delay and self.rng.random() * 100 < rule.delay.percentage:
                delay = float(rule.delay.fixed_delay_ms)
            if rule.abort is not None and not abort and self.rng.random() * 100 < rule.abort.percentage:
                abort = rule.abort.http_status
        return delay, abort

    def call(
        self,
        context: RequestContext,
        calls: list[Call],
        source: Pod,
        destination: Pod,
        subset: str,
        method: str,
        path: str,
        authority: str,
        start_ms: float,
        *,
        handler: Handler,
        user_agent: str = "-",
        x_forwarded_for: str = "",
    ) -> Call:
        rng = self.rng
        grpc = destination.protocol == "grpc"
        call = Call(
            request=context,
            source=source,
            destination=destination,
            external=None,
            protocol=destination.protocol,
            subset=subset,
            method=method,
            path=path,
            authority=authority,
            user_agent=user_agent,
            x_forwarded_for=x_forwarded_for,
            span_id=self._span(),
            start_ms=start_ms,
            downstream_port=self._port(),
            bytes_received=rng.randint(180, 260) if grpc else 0,
        )
        delay, abort = self._fault(source, destination.service, subset, path)
        flags = ["DI"] if delay else []
        if abort:
            flags.append("FI")
            self._local_reply(call, delay + self.between(0.05, 0.6), abort, "fault_filter_abort", flags)
        elif rng.random() < self.config.upstream_failure_share:
            # The connection is refused; the router retries, then gives up.
            flags += ["UF", "URX"]
            call.upstream_port = 0
            self._local_reply(
                call, delay + self.between(2.0, 30.0), 503,
                "upstream_reset_before_response_started{connection_failure}", flags,
            )  # fmt: skip
        else:
            network = self.between(0.2, 0.8)
            call.upstream_port = self._port()
            call.inbound_port = self._port()
            call.server_start_ms = start_ms + delay + network
            app_start = call.server_start_ms + self.between(0.1, 0.4)
            app_ms, code, body = handler(self, context, destination, app_start, calls)
            call.server_service_ms = app_ms
            call.server_duration_ms = (app_start - call.server_start_ms) + app_ms + self.between(0.1, 0.3)
            call.upstream_service_ms = call.server_duration_ms + network
            call.duration_ms = delay + network + call.upstream_service_ms + self.between(0.1, 0.4)
            call.response_code = code
            call.bytes_sent = body
            call.response_flags = ",".join(flags) or NO_FLAGS
            if grpc:
                call.grpc_status = "0"
        calls.append(call)
        return call

    def _local_reply(self, call: Call, duration_ms: float, status: int, details: str, flags: list[str]) -> None:
        call.duration_ms = duration_ms
        call.response_flags = ",".join(flags)
        call.response_code_details = details
        if call.protocol == "grpc":
            call.response_code, call.grpc_status = 200, _GRPC_STATUS_OF_HTTP.get(status, "2")
        else:
            call.response_code = status
            # Envoy's local reply bodies: "fault filter abort", "upstream connect error or ...".
            call.bytes_sent = 18 if details == "fault_filter_abort" else 91

    def tcp(
        self, context: RequestContext, calls: list[Call], source: Pod, start_ms: float, *,
        destination: Pod | None = None, external: ExternalHost | None = None,
        duration: tuple[float, float], request_bytes: tuple[int, int], response_bytes: tuple[int, int],
    ) -> Call:  # fmt: skip
        """One TCP connection, logged when it closes (one entry per proxy per connection)."""
        call = Call(
            request=context,
            source=source,
            destination=destination,
            external=external,
            protocol="tcp",
            subset="",
            method="",
            path="",
            authority="",
            user_agent="",
            x_forwarded_for="",
            span_id="",
            start_ms=start_ms,
            response_code=0,
            response_code_details="",
            bytes_received=self.rng.randint(*request_bytes),
            bytes_sent=self.rng.randint(*response_bytes),
            downstream_port=self._port(),
            upstream_port=self._port(),
        )
        network = self.between(0.1, 0.5)
        call.duration_ms = self.between(*duration) + 2 * network
        if destination is not None:
            call.inbound_port = self._port()
            call.server_start_ms = start_ms + network
            call.server_duration_ms = call.duration_ms - 2 * network
        calls.append(call)
        return call


# -- what each Bookinfo service does ----------------------------------------------------------------


def _productpage(
    sim: Simulator, context: RequestContext, pod: Pod, start: float, calls: list[Call]
) -> tuple[float, int, int]:
    config = sim.config
    rng = sim.rng
    now = start + sim.between(0.5, 2.0)
    if context.not_found:
        return now - start + sim.between(0.3, 1.0), 404, 19
    details = sim.call(
        context, calls, pod, DETAILS, "", "POST", "/bookinfo.Details/GetDetails", "details:9080", now,
        handler=_details, user_agent=_GRPC_USER_AGENT,
    )  # fmt: skip
    now += details.duration_ms + sim.between(0.2, 1.0)
    subset = sim.reviews_subset()
    reviews = sim.call(
        context, calls, pod, REVIEWS[subset], subset, "GET", "/reviews/0", "reviews:9080", now,
        handler=_reviews, user_agent=context.user_agent,
    )  # fmt: skip
    now += reviews.duration_ms + sim.between(0.2, 1.0)
    if rng.random() < config.external_share:
        external = sim.tcp(
            context, calls, pod, now, external=EXTERNAL,
            duration=(40.0, 150.0), request_bytes=(600, 1200), response_bytes=(2000, 6000),
        )  # fmt: skip
        now += external.duration_ms
    now += sim.between(2.0, 8.0)
    return now - start, 200, rng.randint(4200, 5300)


def _details(
    sim: Simulator, context: RequestContext, pod: Pod, start: float, calls: list[Call]
) -> tuple[float, int, int]:
    return sim.between(0.8, 3.0), 200, sim.rng.randint(170, 190)


def _reviews(
    sim: Simulator, context: RequestContext, pod: Pod, start: float, calls: list[Call]
) -> tuple[float, int, int]:
    now = start + sim.between(3.0, 8.0)
    if pod.version == "v1":
        return now - start, 200, sim.rng.randint(350, 370)
    ratings = sim.call(
        context, calls, pod, RATINGS, "", "GET", "/ratings/0", "ratings:9080", now,
        handler=_ratings, user_agent=context.user_agent,
    )  # fmt: skip
    # A failed ratings call still yields a page: reviews shows "ratings service unavailable".
    now += ratings.duration_ms + sim.between(0.5, 2.0)
    return now - start, 200, sim.rng.randint(430, 530)


def _ratings(
    sim: Simulator, context: RequestContext, pod: Pod, start: float, calls: list[Call]
) -> tuple[float, int, int]:
    now = start + sim.between(0.5, 2.0)
    if sim.rng.random() < sim.config.mysql_connection_share:
        connection = sim.tcp(
            context, calls, pod, now, destination=MYSQLDB,
            duration=(1.5, 6.0), request_bytes=(120, 320), response_bytes=(400, 2000),
        )  # fmt: skip
        now += connection.duration_ms
    now += sim.between(0.3, 1.0)
    return now - start, 200, sim.rng.randint(45, 50)
