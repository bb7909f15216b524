"""The HTTP trace routes themselves, fuzzed: an answer or a BodyError (a 4xx), never a 500.

The HTTP server answers 500 for any other exception a route raises. Here the Zipkin and OTLP/HTTP routes
run with a real TraceIngest (the collector's SpanNormaliser) and a real Pipeline, on mutated seeds and
on compressed bodies, as the server hands them over after reading and decoding the body.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzz_mutators import Mutator
from fuzz.fuzz_seeds import seeds
from fuzz.fuzz_targets import BODY_LIMIT
from telemetry.envoy.peers import PeerTable
from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.receivers.httpbody import BodyError, decode_content
from telemetry.receivers.httpserver import Response
from telemetry.receivers.otlp.http_receiver import TracesRoute
from telemetry.receivers.zipkin.receiver import SpansRoute
from telemetry.selfmetrics import SelfStats
from telemetry.spans.normalize import SpanNormaliser
from telemetry.traces import TraceIngest

ROUTES = [
    ("zipkin_json", "zipkin", "application/json"),
    ("zipkin_proto3", "zipkin", "application/x-protobuf"),
    ("otlp_protobuf", "otlp", "application/x-protobuf"),
    ("otlp_json", "otlp", "application/json"),
]


class _Discard:
    def __init__(self) -> None:
        self.records = 0

    def consume(self, batch: Sequence[Record]) -> None:
        self.records += len(batch)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


@pytest.fixture(scope="module")
def routes() -> Iterator[dict[str, Any]]:
    stats = SelfStats()
    pipeline = Pipeline([("discard", _Discard())], stats, queue_size=1_000_000, batch_timeout=0.01)
    pipeline.start()
    ingest = TraceIngest(pipeline, stats, normalise=SpanNormaliser(PeerTable()))
    yield {"zipkin": SpansRoute(ingest), "otlp": TracesRoute(ingest)}
    pipeline.shutdown(timeout=5)


def _answer(route: Any, body: bytes, media_type: str) -> Response:
    try:
        return route.handle(body, media_type)
    except BodyError as error:
        assert 400 <= error.status < 500
        return route.error(error, media_type)


@pytest.mark.parametrize(("seed_name", "route_name", "media_type"), ROUTES)
@given(rng=st.randoms(use_true_random=False), compressed=st.booleans())
def test_route_answers_any_body_without_a_server_error(
    routes: dict[str, Any], seed_name: str, route_name: str, media_type: str, rng: Any, compressed: bool
) -> None:
    body = Mutator(seed_name, seeds()[seed_name], rng).next()
    if compressed:
        # As the server does: the route sees what gzip decoding made of the body.
        raw = gzip.compress(body)
        if rng.random() < 0.3:
            raw = raw[: rng.randrange(len(raw))]
        try:
            body = decode_content(raw, "gzip", BODY_LIMIT)
        except BodyError as error:
            assert error.status == 400
            return
    response = _answer(routes[route_name], body, media_type)
    assert response.status in (200, 202, 400)


@pytest.mark.parametrize(("seed_name", "route_name", "media_type"), ROUTES)
def test_route_takes_every_valid_seed(routes: dict[str, Any], seed_name: str, route_name: str, media_type: str) -> None:
    for body in seeds()[seed_name]:
        assert _answer(routes[route_name], body, media_type).status in (200, 202), body[:200]
