"""``meshscope graph diff A.json B.json``: what changed between two saved graphs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import orjson

from servicegraph.diff import diff_graphs, format_diff
from servicegraph.graphjson import from_json

PROG = "meshscope graph diff"


class GraphFileError(Exception):
    """A graph file that cannot be used; the message names the file."""


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``diff`` to a ``graph`` command's subparsers (the result of ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="compare two saved graphs",
        description="Compare two graph JSON files (from the HTTP API's /api/graph or `meshscope ingest "
        "--graph-out`): nodes and edges added or removed, and edges whose error share or p95 latency moved. "
        "An idle edge counts as present.",
    )
    parser.add_argument("before", metavar="A.json", help="the earlier graph")
    parser.add_argument("after", metavar="B.json", help="the later graph")
    parser.add_argument(
        "--error-threshold",
        type=_non_negative,
        default=5.0,
        metavar="PCT",
        help="flag an edge whose error share moved by at least PCT percentage points (default 5)",
    )
    parser.add_argument(
        "--p95-threshold",
        type=_non_negative,
        default=0.5,
        metavar="RATIO",
        help="flag an edge whose p95 moved by at least RATIO of its earlier value (default 0.5: +50%%)",
    )
    parser.add_argument(
        "--p95-min-ms",
        type=_non_negative,
        default=10.0,
        metavar="MS",
        help="ignore p95 moves where both values are below MS milliseconds (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the diff as JSON")
    parser.set_defaults(func=run)
    return parser


def read_graph_file(path: str) -> nx.MultiDiGraph:
    """The graph in a JSON file; raises GraphFileError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise GraphFileError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise GraphFileError(f"{path}: not JSON: {error}") from None
    try:
        return from_json(document)
    except ValueError as error:
        raise GraphFileError(f"{path}: {error}") from None


def run(args: argparse.Namespace) -> int:
    try:
        before = read_graph_file(args.before)
        after = read_graph_file(args.after)
    except GraphFileError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    result = diff_graphs(before, after, args.error_threshold, args.p95_threshold, args.p95_min_ms)
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(format_diff(result))
    return 0
