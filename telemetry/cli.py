"""The ``meshscope`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servicegraph.model import GRAPH_TYPES
from telemetry.config import Config
from telemetry.confload import ConfigError, load_file, load_mapping

DESCRIPTION = """\
meshscope: see an Envoy / Istio service mesh. Envoy access logs (files, gRPC ALS) in;
Istio-standard Prometheus metrics and a service graph out."""

EPILOG = """\
examples:
  meshscope demo                          a simulated mesh, everything on 127.0.0.1
  meshscope run                           the collector with the default config
  meshscope run -c meshscope.yaml         the collector with a YAML config
  meshscope check-config meshscope.yaml   validate a config, naming each bad key
  meshscope ingest access.log --metrics-out metrics.prom --graph-out graph.json
  meshscope run --graph-source prometheus=http://prometheus:9090   graph what Prometheus holds
  meshscope graph diff before.json after.json   edges added, removed, or worse
  meshscope dashboards export grafana/    Grafana dashboards (JSON) and Prometheus rules

Environment variables MESHSCOPE_<SECTION>__<KEY> override config keys, for example
MESHSCOPE_EXPORTERS__PROMETHEUS__ENDPOINT=0.0.0.0:9464."""


def _config_from(path: str | None, graph_source: str | None = None) -> Config:
    config = load_file(Config, path) if path else load_mapping(Config, {})
    if graph_source:
        # Validated as the config key it overrides, so the error names both.
        load_mapping(Config, {"graph": {"source": graph_source}})
        config.graph.source = graph_source
    return config


def _print_errors(error: ConfigError, source: str) -> None:
    print(f"{source}: {len(error.errors)} error(s)", file=sys.stderr)
    for message in error.errors:
        print(f"  {message}", file=sys.stderr)


def _addresses(collector: object) -> list[str]:
    from telemetry.collector import Collector

    assert isinstance(collector, Collector)
    config = collector.config

    def host(endpoint: str) -> str:
        return endpoint.rpartition(":")[0] or "0.0.0.0"

    def scheme(server: Any) -> str:
        return "https" if server.tls.enabled else "http"

    lines = []
    if collector.metrics is not None:
        lines.append(
            f"  metrics      http://{host(config.exporters.prometheus.endpoint)}:{collector.metrics.port}/metrics"
        )
    for name, receiver in collector.receivers:
        if name == "filelog":
            lines.append(f"  access logs  {', '.join(config.receivers.filelog.include)}")
        elif name == "als":
            lines.append(f"  envoy ALS    grpc://{host(config.receivers.als.endpoint)}:{receiver.port}")  # type: ignore[attr-defined]
        elif name == "otlp":
            if receiver.grpc is not None:  # type: ignore[attr-defined]
                lines.append(f"  OTLP gRPC    {host(config.receivers.otlp.grpc.endpoint)}:{receiver.grpc_port}")  # type: ignore[attr-defined]
            if receiver.http is not None:  # type: ignore[attr-defined]
                lines.append(
                    f"  OTLP HTTP    {scheme(config.receivers.otlp.http)}://{host(config.receivers.otlp.http.endpoint)}:{receiver.http_port}/v1/traces"
                )  # type: ignore[attr-defined]
        elif name == "zipkin":
            lines.append(
                f"  Zipkin       {scheme(config.receivers.zipkin)}://{host(config.receivers.zipkin.endpoint)}:{receiver.port}/api/v2/spans"
            )  # type: ignore[attr-defined]
    if collector.graph is not None:
        lines.append(
            f"  graph & UI   {scheme(config.graph)}://{host(config.graph.endpoint)}:{collector.graph.port}/ "
            f"(API: /api/graph, source: {collector.graph.service.source_name})"
        )
    for name, _ in collector.traces._exporters:
        lines.append(f"  exporting    traces to {name}")
    return lines


def cmd_run(args: argparse.Namespace) -> int:
    from telemetry.collector import Collector, run_until_signalled

    try:
        config = _config_from(args.config, args.graph_source)
        collector = Collector(config)
    except ConfigError as error:
        _print_errors(error, args.config or "config")
        return 2
    except ValueError as error:
        print(f"meshscope: {error}", file=sys.stderr)
        return 2

    def started() -> None:
        print("meshscope collector running (Ctrl-C to stop):", flush=True)
        print("\n".join(_addresses(collector)), flush=True)

    try:
        run_until_signalled(collector, started)
    except OSError as error:
        print(f"meshscope: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        load_file(Config, args.file)
    except ConfigError as error:
        _print_errors(error, args.file)
        return 1
    print(f"{args.file}: OK")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from telemetry.envoy.parser import compile_format
    from telemetry.ingest import format_summary, ingest
    from telemetry.model import Workload

    if args.format != "auto":
        try:
            compile_format(args.format)
        except ValueError as error:
            print(f"meshscope ingest: --format: {error}", file=sys.stderr)
            return 2
    reporter = None
    if args.workload or args.namespace:
        from telemetry.receivers.filelog.identity import app_and_version

        workload = args.workload or "unknown"
        app, version = app_and_version(workload)
        reporter = Workload(workload, args.namespace or "unknown", app, version, gateway=args.gateway)
    if args.graph_out:
        from servicegraph.exports import EXTENSIONS

        if Path(args.graph_out).suffix.lower() not in EXTENSIONS:
            print(f"meshscope ingest: --graph-out: use one of {', '.join(EXTENSIONS)}", file=sys.stderr)
            return 2
    for path in args.files:
        if path != "-" and not Path(path).is_file():
            print(f"meshscope ingest: {path}: no such file", file=sys.stderr)
            return 2
    show_progress = not args.no_progress and sys.stderr.isatty()
    result = ingest(args.files, args.format, reporter, args.max_line_bytes, show_progress)
    print(format_summary(result, args.top))
    if args.metrics_out:
        Path(args.metrics_out).write_bytes(result.exposition)
        print(f"metrics written to {args.metrics_out}")
    if args.graph_out:
        from servicegraph.exports import write_graph

        write_graph(result.graph(args.graph_type), args.graph_out)
        print(f"{args.graph_type} graph written to {args.graph_out}")
    return 0 if result.records or not result.lines else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from telemetry.demo_command import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshscope", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run the collector",
        description="Run the collector: every receiver and sink the config enables (all of them by default: "
        "access-log files under /var/log/pods, Envoy ALS on 127.0.0.1:9001, metrics on 127.0.0.1:9464).",
    )
    run.add_argument("-c", "--config", metavar="FILE", help="YAML config (default: built-in defaults)")
    run.add_argument(
        "--graph-source",
        metavar="SOURCE",
        help="where the service graph comes from: live (this collector's own traffic, the default) or "
        "prometheus=URL (any Prometheus scraping one or many collectors, or a real Istio mesh); "
        "overrides graph.source",
    )
    run.set_defaults(func=cmd_run)

    graph = commands.add_parser(
        "graph", help="work with saved graphs", description="Work with graph files saved from the API or ingest."
    )
    graph_commands = graph.add_subparsers(dest="graph_command", metavar="COMMAND", required=True)
    from servicegraph import diff_command

    diff_command.add_parser(graph_commands).set_defaults(func=diff_command.run)

    from servicegraph.ui import command as ui_command

    ui_command.add_parser(commands).set_defaults(func=ui_command.run)

    from dashboards import command as dashboards_command

    dashboards_command.add_parser(commands).set_defaults(func=dashboards_command.run)

    check = commands.add_parser(
        "check-config", help="validate a config file", description="Print OK, or each error with its key's path."
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=cmd_check_config)

    ingest = commands.add_parser(
        "ingest",
        help="read whole access-log files offline",
        description="Read access-log files (- for stdin), print a summary (records, parse errors by reason, "
        "top edges by requests and by errors) and write the Prometheus exposition and the graph.",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.add_argument(
        "--format",
        default="auto",
        help="auto (default), a preset (istio, istio-upstream-cluster, istio-mixer, envoy, json) or an Envoy format string",
    )
    ingest.add_argument("--workload", help="the reporting proxy's workload (default: from a /var/log/pods path)")
    ingest.add_argument("--namespace", help="the reporting proxy's namespace")
    ingest.add_argument("--gateway", action="store_true", help="the reporting proxy is a gateway")
    ingest.add_argument("--metrics-out", metavar="FILE", help="write the Prometheus text exposition here")
    ingest.add_argument(
        "--graph-out", metavar="FILE", help="write the service graph here: .json, .dot (Graphviz) or .graphml"
    )
    ingest.add_argument(
        "--graph-type", choices=GRAPH_TYPES, default="workload", help="the graph written (default workload)"
    )
    ingest.add_argument(
        "--max-line-bytes", type=int, default=65536, help="longer lines are counted and skipped (default 65536)"
    )
    ingest.add_argument("--top", type=int, default=10, help="how many edges the summary lists (default 10)")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    ingest.set_defaults(func=cmd_ingest)

    demo = commands.add_parser(
        "demo",
        help="run a simulated mesh and the collector on this machine",
        description="A simulated Bookinfo-shaped mesh writes Istio access logs (and streams ALS) to an "
        "in-process collector; faults make reviews v3 slow and ratings fail about 10%% of calls.",
    )
    demo.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: until Ctrl-C)"
    )
    demo.add_argument(
        "--rate", type=float, default=20.0, metavar="RPS", help="requests per second at the gateway (default 20)"
    )
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument(
        "--log-dir", metavar="DIR", help="where the simulated proxies write (default: a temporary folder)"
    )
    demo.add_argument(
        "-c", "--config", metavar="FILE", help="collector config to start from (receivers are pointed at the demo)"
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
