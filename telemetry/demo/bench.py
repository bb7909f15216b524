"""Access-log files for benchmarks: many realistic lines of any format, written fast."""

from __future__ import annotations

from itertools import cycle, islice
from pathlib import Path

from telemetry.demo.config import DemoConfig
from telemetry.demo.entries import DEFAULT_EPOCH_MS, EntryGenerator
from telemetry.envoy.render import compile_renderer

_CHUNK_LINES = 10_000


def _simulated_lines(count: int, fmt: str, seed: int) -> list[str]:
    render = compile_renderer(fmt)
    config = DemoConfig(seed=seed)
    generator = EntryGenerator(config)
    spacing = 1000.0 / config.rate
    lines: list[str] = []
    at = DEFAULT_EPOCH_MS
    while len(lines) < count:
        lines.extend(render(entry.fields) for entry in generator.request(at))
        at += spacing
    return lines[:count]


def benchmark_lines(n: int, fmt: str = "istio", *, seed: int = 42, distinct: int = 50_000) -> list[str]:
    """``n`` lines (no newline) of the demo mesh's proxies, in the order they would be written.

    Simulating costs several times more than rendering, so only the first ``distinct`` lines are
    simulated and the rest repeat them; the default covers every edge and fault many times over.
    """
    lines = _simulated_lines(min(n, distinct), fmt, seed)
    return lines if len(lines) >= n else list(islice(cycle(lines), n))


def write_benchmark_lines(path: Path, n: int, fmt: str = "istio", *, seed: int = 42, distinct: int = 50_000) -> int:
    """Writes ``n`` lines of ``fmt`` (a preset name or a format string) to ``path``; returns the bytes written."""
    pool = [line + "\n" for line in _simulated_lines(min(n, distinct), fmt, seed)]
    lines = cycle(pool)
    written = 0
    remaining = n
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        while remaining > 0:
            size = min(remaining, _CHUNK_LINES)
            chunk = "".join(islice(lines, size))
            out.write(chunk)
            written += len(chunk.encode())
            remaining -= size
    return written
