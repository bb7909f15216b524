"""Parsing workers encode the forward sink's events: Fluentd gets the same events as from the in-process path.

A real Collector tails generated files with the Fluentd forward sink on (in its thread or its helper process),
delivering to a real Forward-protocol peer; with workers the events are encoded in the workers and reach the
sink as encoded batches, without Records. Compared: every event (tag, time, record) with the in-process run,
including trace ids the collector fills in from request ids (those Records still go through the pipeline),
and the checkpoint, which never covers a line whose event is not acknowledged or spooled.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from forwardpeer import ForwardPeer

from telemetry.collector import Collector
from telemetry.config import Config
from telemetry.exporters.fluentforward.process import ProcessForwardSink
from telemetry.exporters.fluentforward.sink import ForwardSink
from telemetry.receivers.filelog.checkpoint import CheckpointFile

from .test_exactness import PODS, generated_lines, pinned_peers, writer

LINES = 3000


def configured(root: Path, workers: int, endpoint: str, helper: bool) -> Config:
    config = Config()
    filelog = config.receivers.filelog
    filelog.include = [str(root / "pods" / "*" / "istio-proxy" / "*.log")]
    filelog.workers = workers
    filelog.checkpoint_file = str(root / "checkpoint.json")
    config.receivers.als.enabled = False
    config.receivers.otlp.grpc.enabled = False
    config.receivers.otlp.http.enabled = False
    config.receivers.zipkin.enabled = False
    config.graph.enabled = False
    forward = config.exporters.fluentforward
    forward.enabled = True
    forward.endpoint = endpoint
    forward.helper_process = helper
    forward.include_original = True  # the workers' parsers keep each line, their encoders add it
    forward.batch_size = 500
    forward.batch_timeout = 0.05
    forward.timeout = 2.0
    forward.spool.directory = str(root / "spool")
    return config


def run(
    root: Path, workers: int, helper: bool, peer: ForwardPeer, traces: dict[str, str], config: Config | None = None
) -> Collector:
    rng = random.Random(11)
    contents = {pod: "".join(line + "\n" for line in generated_lines(pod, LINES, rng)) for pod in range(len(PODS))}
    collector = Collector(config or configured(root, workers, peer.endpoint, helper), peers=pinned_peers())
    for request_id, trace_id in traces.items():
        collector._request_index.remember(request_id, trace_id)
    receiver = collector.receiver("filelog")
    assert receiver is not None
    collector.pipeline.start()
    writer(root, contents)()
    while receiver.poll():  # type: ignore[attr-defined]
        pass
    assert collector.pipeline.flush(30.0)
    return collector


def received(peer: ForwardPeer) -> list[str]:
    return sorted(repr((event.tag, event.time, sorted(event.record.items()))) for event in peer.events())


@pytest.mark.parametrize("correlating", [False, True], ids=["encoded-by-workers", "request-ids-correlated"])
def test_workers_encode_the_same_events_as_the_sink_in_the_collectors_process(
    tmp_path: Path, correlating: bool
) -> None:
    # While the collector knows trace ids by request id (as proxy spans teach them), Records go through the
    # pipeline to be filled in; otherwise the workers encode every event.
    traces = {f"r{pod}-{index}": f"{pod:02d}{index:030d}" for pod in range(len(PODS)) for index in range(0, LINES, 7)}
    if not correlating:
        traces = {}
    events = {}
    for workers, helper in ((0, False), (2, False), (2, True)):
        with ForwardPeer() as peer:
            collector = run(tmp_path / f"{workers}-{helper}", workers, helper, peer, traces)
            try:
                events[(workers, helper)] = received(peer)
                stats = collector.stats
                assert stats.exported["fluentforward"] == stats.total_received() == len(peer.events())
                assert peer.log.errors == [] and peer.duplicate_chunks() == 0
            finally:
                collector.shutdown()
    in_process = events[(0, False)]
    assert len(in_process) > 0.9 * LINES * len(PODS)
    # The generated lines carry no trace id: those that have one were filled in from the request id.
    filled = sum("'trace.id'" in event for event in in_process)
    assert filled > LINES * len(PODS) / 10 if correlating else filled == 0
    assert events[(2, False)] == in_process
    assert events[(2, True)] == in_process


def test_with_fluentd_away_the_checkpoint_covers_only_lines_whose_events_are_spooled(tmp_path: Path) -> None:
    with ForwardPeer() as gone:
        port = gone.port  # closed again: nothing listens there until the peer below starts
    collector = run(tmp_path, 2, True, ForwardPeer(port=port), {})
    try:
        receiver = collector.receiver("filelog")
        receiver.save_checkpoint()  # type: ignore[union-attr]
        stats = collector.stats
        assert stats.total_received() + stats.total_parse_errors() == LINES * len(PODS)
        # Saved (the sink's flush answered: every event handed on is in the fsynced spool), to the files' ends.
        saved = CheckpointFile(str(tmp_path / "checkpoint.json")).load()
        sizes = {path.stat().st_ino: path.stat().st_size for path in (tmp_path / "pods").glob("*/istio-proxy/0.log")}
        assert {mark.inode: mark.offset for mark in saved} == sizes
        sink = collector._durable_sinks[0]
        assert sink.status()["spool_events"] == stats.total_received()  # type: ignore[attr-defined]
        events = stats.total_received()
    finally:
        collector.shutdown()
    # Everything arrives once Fluentd is back (the spool survives the collector).
    with ForwardPeer(port=port) as peer:
        again = Collector(configured(tmp_path, 2, peer.endpoint, True), peers=pinned_peers())
        again.start()
        try:
            assert len(peer.wait_for_events(events, 30)) == events
        finally:
            again.shutdown()


@pytest.mark.parametrize(("workers", "helper"), [(0, False), (0, True), (2, False), (2, True)])
@pytest.mark.parametrize("correlating", [False, True], ids=["encoded-by-workers", "request-ids-correlated"])
def test_set_to_wait_file_tailing_faster_than_fluentd_waits_for_the_sink_and_loses_nothing(
    tmp_path: Path, workers: int, helper: bool, correlating: bool
) -> None:
    # The sink's queue holds far fewer events than the files, and Fluentd acknowledges slowly: file tailing
    # must wait for room (the pipeline's hold-back) instead of the sink dropping its oldest as queue_full.
    traces = {"r0-0": "0" * 31 + "1"} if correlating else {}
    with ForwardPeer() as peer:
        peer.ack_delay = 0.005
        config = configured(tmp_path, workers, peer.endpoint, helper)
        config.exporters.fluentforward.batch_size = 100
        config.exporters.fluentforward.queue_size = 1500  # three read chunks; the files hold ~20
        config.exporters.fluentforward.when_full = "wait"
        collector = run(tmp_path, workers, helper, peer, traces, config)
        try:
            stats = collector.stats
            assert dict(stats.dropped) == {}
            assert stats.exported["fluentforward"] == stats.total_received() == len(peer.events())
            assert stats.total_received() + stats.total_parse_errors() == LINES * len(PODS)
        finally:
            collector.shutdown()


@pytest.mark.parametrize(("workers", "expected"), [(0, ProcessForwardSink), (2, ForwardSink)])
def test_by_default_the_sink_runs_in_the_collectors_process_when_parsing_workers_encode(
    tmp_path: Path, workers: int, expected: type
) -> None:
    config = configured(tmp_path, workers, "127.0.0.1:24224", helper=True)
    config.exporters.fluentforward.helper_process = "auto"
    collector = Collector(config, peers=pinned_peers())
    try:
        (sink,) = [sink for name, sink in collector.pipeline._sinks if name == "fluentforward"]
        assert type(sink) is expected
    finally:
        collector.shutdown()
