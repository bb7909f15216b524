"""ALS under overload: a full pipeline holds the stream back (HTTP/2 flow control), it does not drop.

A real grpc channel with Envoy's stub streams large messages into a real receiver and pipeline whose
only sink is held shut (``GatedSink``) by a batch another receiver is delivering, so the pipeline fills
and stays full until the test opens it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import grpc
import pytest
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from telemetry.envoy.peers import PeerTable
from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.factory import create_receiver
from telemetry.receivers.als.receiver import AlsReceiver
from telemetry.selfmetrics import SelfStats

ENTRIES_PER_MESSAGE = 20
# ~400 kB a message: far more than grpc and the kernel buffer between a stalled server and its client.
PATH_BYTES = 20_000
MESSAGES = 100
QUEUE_SIZE = 100  # records: five messages fill the pipeline


class GatedSink:
    """Takes nothing until ``gate`` is set: the batch in its hands holds every later one in the queue."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def consume(self, batch: Sequence[Record]) -> None:
        self.entered.set()
        self.gate.wait()
        with self._lock:
            self.records.extend(batch)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        self.gate.set()


class HeldCollector:
    def __init__(self, backpressure_wait: float) -> None:
        self.stats = SelfStats()
        self.sink = GatedSink()
        self.pipeline = Pipeline([("gated", self.sink)], self.stats, queue_size=QUEUE_SIZE, batch_size=QUEUE_SIZE)
        self.pipeline.start()
        # Another receiver's batch, delivered in its own thread, is stuck in the sink: ALS batches queue.
        self.blocker = threading.Thread(target=self.pipeline.submit, args=([Record(path="/blocker")], "blocker"))
        self.blocker.start()
        assert self.sink.entered.wait(5)
        config = AlsConfig(endpoint="127.0.0.1:0", backpressure_wait=backpressure_wait, shutdown_grace=0.5)
        self.receiver: AlsReceiver = create_receiver(config, self.pipeline, self.stats, PeerTable())
        self.receiver.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.receiver.port}")
        self.stub = als_pb2_grpc.AccessLogServiceStub(self.channel)
        self.sent = 0  # messages the client's iterator has handed to grpc

    def stream(self, messages: list[als_pb2.StreamAccessLogsMessage]) -> grpc.Future:
        def counted() -> Iterator[als_pb2.StreamAccessLogsMessage]:
            for message in messages:
                yield message
                self.sent += 1

        return self.stub.StreamAccessLogs.future(counted())

    def wait_until_client_stalls(self, settle: float = 1.0, limit: float = 60.0) -> int:
        """How many messages the client got out once its writes stopped progressing (or all were sent)."""
        deadline = time.monotonic() + limit
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if self.sent != last:
                last, since = self.sent, time.monotonic()
            elif time.monotonic() - since >= settle:
                return last
            time.sleep(0.05)
        return self.sent

    def als_records(self) -> list[Record]:
        return [record for record in self.sink.records if record.path != "/blocker"]

    def close(self) -> None:
        self.sink.gate.set()
        self.blocker.join(5)
        self.channel.close()
        self.receiver.shutdown()
        self.pipeline.shutdown()


@pytest.fixture
def held() -> Iterator[Any]:
    made: list[HeldCollector] = []

    def make(backpressure_wait: float) -> HeldCollector:
        made.append(HeldCollector(backpressure_wait))
        return made[-1]

    yield make
    for collector in made:
        collector.close()


def big_messages(als: ModuleType, count: int = MESSAGES) -> list[als_pb2.StreamAccessLogsMessage]:
    identity = als.node(als.PRODUCTPAGE_NODE_ID, LABELS={"app": "productpage", "version": "v1"})
    messages = []
    for number in range(count):
        entries = [
            als.http_entry(
                als.common("outbound|9080||reviews.default.svc.cluster.local", upstream=("10.244.0.12", 9080)),
                path=f"/reviews/{number}/{index}/" + "x" * PATH_BYTES,
            )
            for index in range(ENTRIES_PER_MESSAGE)
        ]
        messages.append(als.http_message(*entries, identity=identity if number == 0 else None))
    return messages


def test_full_pipeline_holds_the_stream_back_and_loses_no_entry(held: Any, als: ModuleType) -> None:
    collector = held(backpressure_wait=120.0)
    call = collector.stream(big_messages(als))

    stalled_at = collector.wait_until_client_stalls()
    # The server stopped reading, so the client's writes stopped: it is being held back, not refused.
    assert stalled_at < MESSAGES
    assert not call.done()
    assert collector.stats.dropped == {}
    assert collector.stats.queue_depth("pipeline") == QUEUE_SIZE

    collector.sink.gate.set()
    call.result(timeout=120)
    assert collector.pipeline.flush(timeout=60)
    total = MESSAGES * ENTRIES_PER_MESSAGE
    assert len(collector.als_records()) == total
    assert collector.stats.records_received == {"als": total, "blocker": 1}
    assert collector.stats.dropped == {}
    paths = {record.path.split("/x", 1)[0] for record in collector.als_records()}
    assert len(paths) == total  # every entry once


def test_pipeline_full_beyond_the_bounded_wait_refuses_and_counts_the_message(held: Any, als: ModuleType) -> None:
    collector = held(backpressure_wait=0.5)
    call = collector.stream(big_messages(als, count=20))

    with pytest.raises(grpc.RpcError) as caught:
        call.result(timeout=60)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Exactly the message that waited in vain is counted; the ones before it are queued or being consumed.
    assert collector.stats.dropped == {("pipeline", "queue_full"): ENTRIES_PER_MESSAGE}
    received = collector.stats.records_received["als"]
    assert received % ENTRIES_PER_MESSAGE == 0 and received >= QUEUE_SIZE

    collector.sink.gate.set()
    assert collector.pipeline.flush(timeout=60)
    assert len(collector.als_records()) == received


def test_shutdown_while_a_stream_is_held_back_accounts_for_every_entry_it_read(held: Any, als: ModuleType) -> None:
    collector = held(backpressure_wait=120.0)
    call = collector.stream(big_messages(als, count=20))
    collector.wait_until_client_stalls()

    collector.receiver.shutdown()
    collector.sink.gate.set()
    collector.pipeline.shutdown(timeout=30)
    with pytest.raises(grpc.RpcError):
        call.result(timeout=60)
    received = collector.stats.records_received.get("als", 0)
    dropped = sum(collector.stats.dropped.values())
    # Every message the server read was either delivered or counted, never lost in between.
    assert len(collector.als_records()) == received
    assert (received + dropped) % ENTRIES_PER_MESSAGE == 0
    assert received + dropped >= QUEUE_SIZE + ENTRIES_PER_MESSAGE
