"""A real Pipeline with a collecting sink, real files under tmp_path, and the real access-log parser."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from telemetry.deadletter import DeadLetter
from telemetry.envoy.peers import PeerTable
from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.filelog.receiver import FileLogReceiver
from telemetry.receivers.filelog.workers.pool import ParallelFileLogReceiver
from telemetry.selfmetrics import SelfStats

TESTDATA = Path(__file__).resolve().parents[3] / "testdata" / "filelog"

ISTIO_LINE = (
    '[2024-05-04T17:22:59.046Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 24 23 "-" '
    '"python-requests/2.31.0" "{request_id}" "reviews:9080" "10.244.0.12:9080" '
    "outbound|9080|v2|reviews.default.svc.cluster.local 10.244.0.9:43210 10.96.12.34:9080 "
    "10.244.0.9:50212 - default"
)

POD_DIR = "pods/default_reviews-v2-7bf8c9648f-xk2zq_4c1e2d3a-1111-2222-3333-444455556666/istio-proxy"


def istio_lines(prefix: str, count: int) -> list[str]:
    """``count`` valid Istio access-log lines whose request ids are ``prefix-0`` ... (no newlines)."""
    return [ISTIO_LINE.format(request_id=f"{prefix}-{index}") for index in range(count)]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class CollectingSink:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[Record] = []

    def consume(self, batch: Sequence[Record]) -> None:
        with self._lock:
            self.records.extend(batch)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass

    def count(self) -> int:
        with self._lock:
            return len(self.records)


class Harness:
    """What every receiver test needs; helpers hang off it because test modules cannot import conftest."""

    testdata = TESTDATA
    pod_dir = POD_DIR
    istio_lines = staticmethod(istio_lines)
    wait_until = staticmethod(wait_until)

    def __init__(self, root: Path, workers: int = 0) -> None:
        self.root = root
        self.workers = workers  # parsing worker processes of the receivers made here (0: in-process)
        self.logs = root / "logs"
        self.logs.mkdir()
        self.stats = SelfStats()
        self.sink = CollectingSink()
        self.pipeline = self.new_pipeline()
        self._receivers: list[FileLogReceiver] = []
        self._pipelines: list[Pipeline] = [self.pipeline]

    def new_pipeline(self, cls: type[Pipeline] = Pipeline, **kwargs: Any) -> Pipeline:
        pipeline = cls([("collect", self.sink)], self.stats, batch_timeout=0.005, **kwargs)
        pipeline.start()
        if hasattr(self, "_pipelines"):
            self._pipelines.append(pipeline)
        return pipeline

    def config(self, **overrides: Any) -> FileLogConfig:
        settings: dict[str, Any] = {
            "include": [str(self.logs / "**" / "*.log")],
            "poll_interval": 0.01,
            "checkpoint_file": str(self.root / "state" / "checkpoint.json"),
            "checkpoint_interval": 0.02,
        }
        settings.update(overrides)
        return FileLogConfig(**settings)

    def receiver(
        self,
        config: FileLogConfig | None = None,
        pipeline: Pipeline | None = None,
        dead_letter: DeadLetter | None = None,
    ) -> FileLogReceiver:
        receiver: FileLogReceiver
        if self.workers:
            receiver = ParallelFileLogReceiver(  # type: ignore[assignment]
                config or self.config(), pipeline or self.pipeline, self.stats, PeerTable(), dead_letter,
                workers=self.workers,
            )  # fmt: skip
        else:
            receiver = FileLogReceiver(
                config or self.config(), pipeline or self.pipeline, self.stats, PeerTable(), dead_letter
            )
        self._receivers.append(receiver)
        return receiver

    def path(self, name: str) -> Path:
        path = self.logs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def append(self, name: str, lines: Sequence[str], newline: bool = True) -> Path:
        path = self.path(name)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines) if newline else "".join(lines))
        return path

    def delivered(self) -> list[Record]:
        """Every record the sink has received, once the pipeline has handed all queued ones on."""
        assert self.pipeline.flush(10.0)
        return list(self.sink.records)

    def request_ids(self) -> list[str]:
        return [record.request_id for record in self.delivered()]

    def close(self) -> None:
        for receiver in self._receivers:
            receiver.shutdown()
        for pipeline in self._pipelines:
            pipeline.shutdown()


@pytest.fixture
def harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    """In-process receivers; ``@pytest.mark.parametrize("harness", [0, 2], indirect=True)`` runs a test
    with receivers that parse in that many worker processes too."""
    harness = Harness(tmp_path, getattr(request, "param", 0))
    yield harness
    harness.close()
