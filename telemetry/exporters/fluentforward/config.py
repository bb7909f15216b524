"""Config of the Fluentd forward log sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from telemetry.endpoints import split_target
from telemetry.exporters.export_queue import RetryConfig

MIB = 1024 * 1024
NAMESPACE = "{namespace}"


@dataclass
class SpoolConfig:
    """Where chunks wait on disk while Fluentd cannot take them (and across a restart of the collector)."""

    enabled: bool = True
    # Relative paths resolve against the working directory of the process; the container image and the
    # compose stack mount a volume there. One sink per directory.
    directory: str = ".meshscope/spool/fluentforward"
    max_bytes: int = 256 * MIB  # beyond it the oldest segment's chunks are dropped (reason spool_full)
    segment_bytes: int = 8 * MIB  # chunks are appended to a segment file until it reaches this size

    def validate(self) -> list[str]:
        errors = []
        if self.enabled and not self.directory:
            errors.append("directory: required when the spool is enabled")
        if self.segment_bytes < 4096:
            errors.append("segment_bytes: must be at least 4096")
        if self.max_bytes < 2 * self.segment_bytes:
            errors.append("max_bytes: must be at least twice segment_bytes")
        return errors


@dataclass
class FluentForwardConfig:
    enabled: bool = False
    endpoint: str = "127.0.0.1:24224"  # Fluentd's in_forward
    # The event tag; {namespace} is the namespace of the proxy that reported the request.
    tag: str = "meshscope.access.{namespace}"
    include_original: bool = False  # each event carries the access-log line as read (event.original)
    require_ack: bool = True  # ask Fluentd to acknowledge each chunk (require_ack_response) and resend if not
    timeout: float = 10.0  # seconds for connecting, for sending a chunk, and for its acknowledgement
    batch_size: int = 2048  # events per chunk (one PackedForward message)
    batch_timeout: float = 1.0  # seconds a partial chunk waits for more events
    # Records waiting to be encoded, in memory; beyond it the oldest are dropped (reason queue_full).
    queue_size: int = 100_000
    # "wait": file tailing waits for room in that queue while Fluentd answers (receivers that cannot wait,
    # ALS and spans, still drop the oldest). Not the default: with such receivers in the same collector, or
    # a Fluentd that answers but does not drain, tailing and the metrics of tailed files fall behind.
    when_full: Literal["drop_oldest", "wait"] = "drop_oldest"
    compression: Literal["none", "gzip"] = "none"  # gzip: CompressedPackedForward
    shutdown_timeout: float = 5.0  # how long shutdown waits for delivery before spooling the rest
    # Sends of one chunk that reached Fluentd without an acknowledgement (it closed the connection, or
    # timed out) before the chunk is dropped (reason rejected), so one chunk Fluentd keeps refusing cannot
    # hold back the whole spool; 0: no limit.
    max_chunk_attempts: int = 10
    # Encode and deliver in a helper process (process.py): the collector's process then spends ~1 µs per
    # event instead of ~2.5. false: a thread of the collector's process does it (for one-core machines).
    # auto: the helper unless file tailing runs parsing workers, which encode the events themselves; then
    # the helper would only add a hop (with 2 workers: 254-271k lines/s in-process, 223-245k with it).
    helper_process: bool | Literal["auto"] = "auto"
    # Reconnection backoff. max_elapsed applies only without a spool: then a chunk is given up after it.
    retry: RetryConfig = field(default_factory=RetryConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)

    def address(self) -> tuple[str, int]:
        return split_target(self.endpoint)

    def uses_helper(self, parsing_workers: int) -> bool:
        """Whether the sink runs in a helper process, with file tailing's ``parsing_workers`` resolved."""
        return parsing_workers == 0 if self.helper_process == "auto" else self.helper_process

    def validate(self) -> list[str]:
        errors = []
        try:
            self.address()
        except ValueError as error:
            errors.append(str(error))  # names the key
        rest = self.tag.replace(NAMESPACE, "x")
        if not self.tag or "{" in rest or "}" in rest or any(char.isspace() for char in rest):
            errors.append("tag: must be a non-empty tag without spaces; {namespace} is the only placeholder")
        if self.timeout <= 0:
            errors.append("timeout: must be positive")
        if self.batch_size < 1:
            errors.append("batch_size: must be at least 1")
        if self.batch_timeout < 0:
            errors.append("batch_timeout: must not be negative")
        if self.queue_size < self.batch_size:
            errors.append("queue_size: must be at least batch_size")
        if self.max_chunk_attempts < 0:
            errors.append("max_chunk_attempts: must not be negative")
        if self.shutdown_timeout < 0:
            errors.append("shutdown_timeout: must not be negative")
        return errors  # retry and spool are validated by the config loader, as every nested config
