"""Config of the file tailing receiver."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

MAX_WORKERS = 64


@dataclass
class WorkloadMatch:
    """The reporting proxy's identity for files matching ``glob`` (when the path does not tell it)."""

    glob: str = ""
    workload: str = "unknown"
    namespace: str = "unknown"
    app: str = ""  # defaults to the workload name
    version: str = "unknown"
    gateway: bool = False

    def validate(self) -> list[str]:
        return [] if self.glob else ["glob: required"]


@dataclass
class DeadLetterConfig:
    path: str = ""  # empty: no dead-letter file
    max_lines: int = 1000  # at most this many bad lines are sampled into the file per run

    def validate(self) -> list[str]:
        return [] if self.max_lines >= 0 else ["max_lines: must not be negative"]


@dataclass
class FileLogConfig:
    enabled: bool = True
    include: list[str] = field(default_factory=lambda: ["/var/log/pods/*/istio-proxy/*.log"])
    exclude: list[str] = field(default_factory=list)
    format: str = "auto"  # a preset name, an Envoy format string, or "auto"
    start_at: Literal["beginning", "end"] = "beginning"
    poll_interval: float = 0.25
    max_line_bytes: int = 65536
    # 128 KiB: a chunk's lines are parsed and aggregated while they are still in the CPU's cache.
    read_chunk_bytes: int = 1 << 17
    checkpoint_file: str = ""  # empty: offsets are not kept across restarts
    checkpoint_interval: float = 1.0
    workloads: list[WorkloadMatch] = field(default_factory=list)
    dead_letter: DeadLetterConfig = field(default_factory=DeadLetterConfig)
    # Parsing worker processes: 0 parses in the collector's process; "auto" starts one per CPU this process
    # may run on when there are at least two (else 0). Files are shared among workers by path.
    workers: int | Literal["auto"] = 0

    def worker_count(self) -> int:
        """How many parsing worker processes to run (``workers`` resolved)."""
        if self.workers != "auto":
            return self.workers
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return min(cpus, MAX_WORKERS) if cpus >= 2 else 0

    def validate(self) -> list[str]:
        errors = []
        if self.max_line_bytes < 128:
            errors.append("max_line_bytes: must be at least 128")
        if self.poll_interval <= 0:
            errors.append("poll_interval: must be positive")
        if self.read_chunk_bytes < 1:
            errors.append("read_chunk_bytes: must be positive")
        if self.checkpoint_interval <= 0:
            errors.append("checkpoint_interval: must be positive")
        if self.workers != "auto" and not 0 <= self.workers <= MAX_WORKERS:
            errors.append(f'workers: must be "auto" or 0 to {MAX_WORKERS}')
        if self.enabled and not self.include:
            errors.append("include: needs at least one glob pattern")
        if self.format != "auto":
            from telemetry.envoy.parser import compile_format  # the parser imports this package's peers

            try:
                compile_format(self.format)
            except ValueError as error:
                errors.append(f"format: {error}")
        return errors
