"""Building the file tailing receiver from its config (what ``meshscope run`` calls)."""

from __future__ import annotations

from telemetry.deadletter import DeadLetter
from telemetry.envoy.peers import PeerTable
from telemetry.pipeline import Pipeline
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.filelog.receiver import FileLogReceiver
from telemetry.receivers.filelog.workers.outputs import WorkerOutputs
from telemetry.receivers.filelog.workers.pool import ParallelFileLogReceiver
from telemetry.selfmetrics import SelfStats


def create_receiver(
    config: FileLogConfig,
    pipeline: Pipeline,
    stats: SelfStats,
    peers: PeerTable,
    keep_original: bool = False,
    outputs: WorkerOutputs | None = None,
) -> FileLogReceiver | ParallelFileLogReceiver:
    """In-process, or with ``config.workers`` parsing processes; ``outputs`` says what the collector's sinks
    need back from them (by default every Record)."""
    dead_letter = DeadLetter(config.dead_letter.path, config.dead_letter.max_lines) if config.dead_letter.path else None
    workers = config.worker_count()
    if workers > 0:
        return ParallelFileLogReceiver(config, pipeline, stats, peers, dead_letter, keep_original, outputs, workers)
    return FileLogReceiver(config, pipeline, stats, peers, dead_letter, keep_original)
