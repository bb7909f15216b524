"""Mutation fuzzing of every parser: a million inputs in a few minutes, crashers saved for replay.

Each target (tests/fuzz/fuzz_targets.py) is a parser at the boundary its receiver calls it at; it
either takes an input, refuses it with its documented error, or crashes (any other exception). Inputs
are the valid seeds of tests/fuzz/fuzz_seeds.py (tests/testdata files and demo-mesh messages) changed
by tests/fuzz/fuzz_mutators.py: byte mutations (flips, interesting bytes, numbers and tokens, chunks
deleted, repeated, inserted, spliced, truncated) and structure mutations (JSON nodes replaced, removed
or added; any protobuf field at any depth set to an extreme value; config keys at the schema's paths).

A crash is saved once per (target, exception type, raising line) under --out as a file to copy into
tests/testdata/fuzz/<target>/, where tests/fuzz/test_regressions.py replays it. An input that takes
longer than --slow seconds is reported too (a regex backtracking or a decompression bomb would be).

    nice -n 10 python benchmarks/fuzz.py [--inputs 1000000] [--seed 1] [--jobs 1] [--targets a,b]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import multiprocessing
import random
import resource
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from fuzz.fuzz_mutators import Mutator  # noqa: E402
from fuzz.fuzz_seeds import seeds  # noqa: E402
from fuzz.fuzz_targets import TARGETS  # noqa: E402

# Relative share of the inputs per target: cheap parsers get more, so that no target takes most of the time.
WEIGHTS = {
    "accesslog_istio": 12,
    "accesslog_envoy": 8,
    "accesslog_custom": 8,
    "accesslog_json": 10,
    "accesslog_auto": 8,
    "accesslog_wrapped": 6,
    "format_compiler": 1,
    "cluster_names": 12,
    "zipkin_json": 8,
    "zipkin_proto3": 8,
    "otlp_protobuf": 8,
    "otlp_json": 1,
    "als": 10,
    "node": 8,
    "config_file": 1,
    "config_env": 1,
    "http_body": 10,
}


# -- the run -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class TargetResult:
    name: str
    inputs: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = dataclasses.field(default_factory=dict)
    crashes: dict[str, str] = dataclasses.field(default_factory=dict)  # signature -> saved file
    slow: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    slowest: float = 0.0
    parse_seconds: float = 0.0  # inside the target only (seconds also counts making the inputs)


def _signature(name: str, error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if "/telemetry/" in frame.filename or "/servicegraph/" in frame.filename]
    frame = (ours or frames)[-1]
    return f"{name}: {type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}"


def _save(out: Path, name: str, data: bytes, kind: str) -> str:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
    path.write_bytes(data)
    return str(path)


def fuzz_target(name: str, count: int, seed: int, out: Path, slow_seconds: float) -> TargetResult:
    target = TARGETS[name]
    rng = random.Random(f"{seed}/{name}")
    mutator = Mutator(name, seeds()[name], rng)
    result = TargetResult(name)
    clock = time.perf_counter
    started = clock()
    for _ in range(count):
        data = mutator.next()
        before = clock()
        try:
            outcome = target(data)
        except Exception as error:  # a crasher: anything the target's receiver does not handle
            outcome = "crash"
            signature = _signature(name, error)
            if signature not in result.crashes:
                result.crashes[signature] = _save(out, name, data, "crash")
        spent = clock() - before
        result.parse_seconds += spent
        if spent > slow_seconds and len(result.slow) < 5:
            # A shared machine pauses any process now and then: only an input slow twice is reported.
            again = clock()
            try:
                target(data)
            except Exception:
                pass
            spent = min(spent, clock() - again)
            if spent > slow_seconds:
                result.slow.append((spent, _save(out, name, data, "slow")))
        if spent > result.slowest:
            result.slowest = spent
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
    result.inputs = count
    result.seconds = clock() - started
    return result


def _run_one(args: tuple[str, int, int, str, float]) -> tuple[TargetResult, int]:
    name, count, seed, out, slow = args
    result = fuzz_target(name, count, seed, Path(out), slow)
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="total generated inputs (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed makes the same inputs")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (targets are spread over them)")
    parser.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    parser.add_argument("--out", default="/tmp/meshscope-fuzz", help="where crashing and slow inputs are saved")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds after which an input is reported slow")
    args = parser.parse_args()

    names = [name for name in args.targets.split(",") if name] or list(TARGETS)
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    total_weight = sum(WEIGHTS.get(name, 1) for name in names)
    counts = {name: max(1, args.inputs * WEIGHTS.get(name, 1) // total_weight) for name in names}
    counts[names[0]] += args.inputs - sum(counts.values())
    jobs = [(name, counts[name], args.seed, args.out, args.slow) for name in names]

    print(f"fuzzing {sum(counts.values()):,} inputs over {len(names)} targets, seed {args.seed}, {args.jobs} job(s)")
    started = time.perf_counter()
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            results = pool.map(_run_one, jobs, chunksize=1)
    else:
        results = [_run_one(job) for job in jobs]
    wall = time.perf_counter() - started

    print(
        f"\n{'target':18} {'inputs':>9} {'inputs/s':>9} {'parsed/s':>9} {'ok':>8} {'rejected':>9} {'crash':>6} "
        f"{'slowest':>9}"
    )
    crashes: dict[str, str] = {}
    slow: list[tuple[float, str]] = []
    for result, _ in results:
        rate = result.inputs / result.seconds if result.seconds else 0.0
        parse_rate = result.inputs / result.parse_seconds if result.parse_seconds else 0.0
        print(
            f"{result.name:18} {result.inputs:>9,} {rate:>9,.0f} {parse_rate:>9,.0f} {result.outcomes.get('ok', 0):>8,} "
            f"{result.outcomes.get('rejected', 0):>9,} {result.outcomes.get('crash', 0):>6,} "
            f"{result.slowest * 1000:>7.1f}ms"
        )
        crashes.update(result.crashes)
        slow += result.slow
    total = sum(result.inputs for result, _ in results)
    peak_mb = max(peak for _, peak in results) / 1024
    print(f"\n{total:,} inputs in {wall:.1f} s ({total / wall:,.0f} inputs/s), peak RSS {peak_mb:.0f} MB per process")
    print(f"distinct crashes: {len(crashes)}")
    for signature, path in sorted(crashes.items()):
        print(f"  {signature}\n    input: {path}")
    if slow:
        print(f"slow inputs (> {args.slow} s): {len(slow)}")
        for seconds, path in slow:
            print(f"  {seconds:.2f} s  {path}")
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    main()
