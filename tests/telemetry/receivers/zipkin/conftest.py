"""A Zipkin receiver started on a free port over a real TraceIngest and Pipeline (see tests/traceharness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from traceharness import TraceHarness

from telemetry.receivers.zipkin.config import ZipkinConfig
from telemetry.receivers.zipkin.factory import create_receiver
from telemetry.receivers.zipkin.receiver import ZipkinReceiver


class Running:
    def __init__(self, harness: TraceHarness, receiver: ZipkinReceiver) -> None:
        self.harness = harness
        self.receiver = receiver
        self.normaliser = harness.normaliser
        self.stats = harness.stats

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.port}/api/v2/spans"


@pytest.fixture
def make_zipkin() -> Iterator[Callable[..., Running]]:
    made: list[Running] = []

    def make(start_pipeline: bool = True, queue_size: int = 100_000, **config: Any) -> Running:
        harness = TraceHarness.create(start_pipeline, queue_size)
        receiver = create_receiver(ZipkinConfig(endpoint="127.0.0.1:0", **config), harness.ingest, harness.stats)
        receiver.start()
        running = Running(harness, receiver)
        made.append(running)
        return running

    yield make
    for running in made:
        running.receiver.shutdown()
        running.harness.close()


@pytest.fixture
def zipkin(make_zipkin: Callable[..., Running]) -> Running:
    return make_zipkin()
