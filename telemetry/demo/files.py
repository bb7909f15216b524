"""Each simulated proxy's access log, laid out as the kubelet lays out pod logs.

``<dir>/<namespace>_<pod>_<uid>/istio-proxy/0.log``: the file receiver derives the reporting
workload from the path. Lines are plain Envoy output (no CRI ``<time> stdout F`` prefix).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from telemetry.demo.topology import Pod

CONTAINER = "istio-proxy"


def pod_log_path(log_dir: Path, pod: Pod) -> Path:
    return log_dir / pod.log_dir_name / CONTAINER / "0.log"


class PodLogWriter:
    """Appends lines to one pod's log; a batch is one write, flushed so a tailer sees it at once."""

    def __init__(self, log_dir: Path, pod: Pod) -> None:
        self.pod = pod
        self.path = pod_log_path(log_dir, pod)
        self.lines_written = 0
        self._file: TextIO | None = None

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8", newline="\n")
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()
        self.lines_written += len(lines)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
