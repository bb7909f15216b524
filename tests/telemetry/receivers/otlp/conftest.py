"""OTLP receivers started on free ports over a real TraceIngest and Pipeline (see tests/traceharness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from traceharness import TraceHarness

from telemetry.receivers.otlp.config import OtlpConfig, OtlpGrpcConfig, OtlpHttpConfig
from telemetry.receivers.otlp.factory import create_receiver
from telemetry.receivers.otlp.receiver import OtlpReceiver


class Running:
    def __init__(self, harness: TraceHarness, receiver: OtlpReceiver) -> None:
        self.harness = harness
        self.receiver = receiver
        self.normaliser = harness.normaliser
        self.stats = harness.stats

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.http_port}/v1/traces"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.receiver.grpc_port}"


MakeOtlp = Callable[..., Running]


@pytest.fixture
def make_otlp() -> Iterator[MakeOtlp]:
    made: list[Running] = []

    def make(start_pipeline: bool = True, queue_size: int = 100_000, **limits: Any) -> Running:
        harness = TraceHarness.create(start_pipeline, queue_size)
        config = OtlpConfig(
            grpc=OtlpGrpcConfig(endpoint="127.0.0.1:0", **limits), http=OtlpHttpConfig(endpoint="127.0.0.1:0", **limits)
        )
        receiver = create_receiver(config, harness.ingest, harness.stats)
        receiver.start()
        running = Running(harness, receiver)
        made.append(running)
        return running

    yield make
    for running in made:
        running.receiver.shutdown()
        running.harness.close()


@pytest.fixture
def otlp(make_otlp: MakeOtlp) -> Running:
    return make_otlp()
