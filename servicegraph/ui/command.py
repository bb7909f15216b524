"""``meshscope ui``: the web UI on its own, over any meshscope API or straight over a Prometheus."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from telemetry.security.config import AuthConfig, TlsConfig

PROMETHEUS_PREFIX = "prometheus="
# UiSettings keys -> the flags that set them, so errors name what the user typed.
_FLAGS = {
    "jaeger_url": "--jaeger-url",
    "zipkin_url": "--zipkin-url",
    "grafana_url": "--grafana-url",
    "default_window": "--window",
    "refresh_seconds": "--refresh",
}

DESCRIPTION = """\
Serve the live service graph page over a source of graphs:
  http://HOST:PORT         a meshscope graph API (a collector's, or `meshscope demo`'s)
  prometheus=http://...    any Prometheus holding Istio's standard metrics; the page then serves
                           its own graph API (/api/...) over it too"""


class UsageError(ValueError):
    """A bad argument: exit status 2, the message names the flag."""


class SourceError(RuntimeError):
    """The source cannot be read: exit status 1, the message names its URL."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from servicegraph.ui.settings import UiSettings

    defaults = UiSettings()
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ui",
        help="serve the service graph web UI over a meshscope API or a Prometheus",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source", required=True, metavar="URL", help="http://host:port of a meshscope API, or prometheus=URL"
    )
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token-env",
        default="",
        metavar="NAME",
        help="with an http(s) source: the environment variable holding the API's bearer token",
    )
    token.add_argument(
        "--token-file",
        default="",
        metavar="PATH",
        help="with an http(s) source: a file holding the API's bearer token (a mounted secret)",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8050",
        metavar="HOST:PORT",
        help="where to serve the page (default 127.0.0.1:8050)",
    )
    parser.add_argument(
        "--auth-token-env",
        default="",
        metavar="NAME",
        help="require the bearer token in this environment variable of the page's visitors "
        "(open /?token=... once in a browser)",
    )
    parser.add_argument("--tls-cert", default="", metavar="PEM", help="serve the page over TLS with this certificate")
    parser.add_argument("--tls-key", default="", metavar="PEM", help="the key of --tls-cert")
    parser.add_argument(
        "--prometheus-selector",
        default="",
        metavar="MATCHERS",
        help='with prometheus=URL: label matchers added to every query, e.g. job="mesh"',
    )
    parser.add_argument(
        "--jaeger-url", default=defaults.jaeger_url, help=f"trace links (default {defaults.jaeger_url}; '' for none)"
    )
    parser.add_argument(
        "--zipkin-url", default=defaults.zipkin_url, help=f"trace links (default {defaults.zipkin_url}; '' for none)"
    )
    parser.add_argument(
        "--grafana-url",
        default=defaults.grafana_url,
        help=f"dashboard links (default {defaults.grafana_url}; '' for none)",
    )
    parser.add_argument(
        "--window", default=defaults.default_window, help=f"the window shown first (default {defaults.default_window})"
    )
    parser.add_argument(
        "--refresh",
        type=float,
        default=defaults.refresh_seconds,
        metavar="S",
        help=f"seconds between refreshes (default {defaults.refresh_seconds:g})",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        host, port, app, source = build(args)
    except UsageError as error:
        print(f"meshscope ui: {error}", file=sys.stderr)
        return 2
    except SourceError as error:
        print(f"meshscope ui: {error}", file=sys.stderr)
        return 1
    from servicegraph.api.server import GraphServer
    from telemetry.security.tls import TlsFilesError

    try:
        auth, tls = _page_security(args)
    except UsageError as error:
        print(f"meshscope ui: {error}", file=sys.stderr)
        return 2
    server = GraphServer(app, args.listen, auth=auth, tls=tls)
    try:
        server.start()
    except (OSError, TlsFilesError) as error:
        print(f"meshscope ui: --listen: cannot serve on {args.listen}: {error}", file=sys.stderr)
        return 1
    shown = f"[{host}]" if ":" in host else host
    print(
        f"meshscope UI on {server.scheme}://{shown}:{server.port}/ (graphs from {source}; Ctrl-C to stop)",
        flush=True,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


def build(args: argparse.Namespace) -> tuple[str, int, Flask, str]:
    """The address to listen on, the Flask app (API + page) and a description of the source."""
    from servicegraph.ui.settings import UiSettings
    from telemetry.endpoints import split_endpoint

    try:
        host, port = split_endpoint(args.listen, "--listen")
    except ValueError as error:
        raise UsageError(str(error)) from None
    settings = UiSettings(
        jaeger_url=args.jaeger_url,
        zipkin_url=args.zipkin_url,
        grafana_url=args.grafana_url,
        default_window=args.window,
        windows=UiSettings().windows,
        refresh_seconds=args.refresh,
    )
    problems = settings.validate()
    if problems:
        raise UsageError("; ".join(_flag_named(problem) for problem in problems))
    source: str = args.source
    if source.startswith(PROMETHEUS_PREFIX):
        if getattr(args, "token_env", "") or getattr(args, "token_file", ""):
            raise UsageError("--token-env / --token-file: only for an http(s):// meshscope API source")
        app = _prometheus_app(source[len(PROMETHEUS_PREFIX) :], args.prometheus_selector, settings)
        return host, port, app, f"Prometheus {source[len(PROMETHEUS_PREFIX) :]}"
    if source.startswith(("http://", "https://")):
        return host, port, _remote_app(source, settings, _token(args)), source
    raise UsageError(f"--source: expected http://host:port of a meshscope API or prometheus=URL, got {source!r}")


def _page_security(args: argparse.Namespace) -> tuple[AuthConfig, TlsConfig]:
    """Who may open the page (a bearer token) and whether it is served over TLS, from the flags."""
    from telemetry.security.config import AuthConfig, TlsConfig

    token = ""
    if args.auth_token_env:
        token = os.environ.get(args.auth_token_env, "").strip()
        if not token:
            raise UsageError(f"--auth-token-env: the environment variable {args.auth_token_env} is not set or empty")
    auth = AuthConfig(bearer_token=token)
    tls = TlsConfig(cert_file=args.tls_cert, key_file=args.tls_key)
    problems = [f"--auth-token-env: {problem.partition(': ')[2]}" for problem in auth.validate()]
    problems += [f"--tls-{problem.partition('_')[0]}: {problem.partition(': ')[2]}" for problem in tls.validate()]
    if problems:
        raise UsageError("; ".join(problems))
    return auth, tls


def _flag_named(problem: str) -> str:
    key, _, reason = problem.partition(": ")
    return f"{_FLAGS.get(key, key)}: {reason}"


def _token(args: argparse.Namespace) -> str:
    """The bearer token for a remote API, from --token-env or --token-file ("" when neither is given)."""
    name: str = getattr(args, "token_env", "")
    path: str = getattr(args, "token_file", "")
    if name:
        token = os.environ.get(name, "").strip()
        if not token:
            raise UsageError(f"--token-env: the environment variable {name} is not set or empty")
        return token
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                token = handle.read(4096).strip()
        except (OSError, UnicodeDecodeError) as error:
            why = getattr(error, "strerror", None) or error
            raise UsageError(f"--token-file: cannot read {path!r}: {why}") from None
        if not token:
            raise UsageError(f"--token-file: {path!r} is empty")
        return token
    return ""


def _remote_app(url: str, settings: Any, token: str = "") -> Flask:
    from servicegraph.ui.app import attach_ui
    from servicegraph.ui.backend import BackendError, HttpBackend

    try:
        backend = HttpBackend(url, token=token)
    except ValueError as error:
        raise UsageError(f"--source: {error}") from None
    try:
        backend.graph(settings.default_window, "workload", [], False)
    except BackendError as error:
        if error.status == 401:
            hint = "the token is refused" if token else "it needs a bearer token: pass --token-env or --token-file"
            raise SourceError(f"the graph API at {url} cannot be read: {hint} ({error})") from None
        if error.status is not None:  # it answers, but is not a meshscope graph API
            raise SourceError(f"the graph API at {url} cannot be read: {error}") from None
        # Not answering yet (or for now): serve the page anyway, its banner says what is missing.
        _warn(f"the graph API at {url} does not answer ({error}); the page shows a banner until it does")
    from flask import Flask

    app = Flask("meshscope-ui")
    attach_ui(app, backend, settings)
    return app


def _prometheus_app(url: str, selector: str, settings: Any) -> Flask:
    from servicegraph.api.routes import create_app
    from servicegraph.durations import parse_duration
    from servicegraph.health import HealthConfig
    from servicegraph.service import GraphService
    from servicegraph.sources.prometheus import PrometheusSource, PrometheusSourceError
    from servicegraph.ui.app import attach_ui
    from servicegraph.ui.backend import LocalBackend
    from telemetry.selfmetrics import SelfStats

    window = parse_duration(settings.default_window)
    # No collector runs here; the stats only carry Prometheus's reachability to /api/status and the banner.
    stats = SelfStats()
    try:
        source = PrometheusSource(url, selector, stats=stats)
    except ValueError as error:
        raise UsageError(f"--source prometheus=URL / --prometheus-selector: {error}") from None
    try:
        source.traffic(window)
    except PrometheusSourceError as error:
        if not error.unreachable:  # it answers, and refuses the queries: a wrong selector, say
            raise SourceError(str(error)) from None
        _warn(f"Prometheus does not answer ({error.why}); the page shows a banner until it does")
    service = GraphService(source, f"prometheus {source.shown_url}", unreachable=stats.unreachable)
    app = create_app(service, HealthConfig(), window)
    attach_ui(app, LocalBackend(app), settings)
    return app


def _warn(message: str) -> None:
    print(f"meshscope ui: warning: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m servicegraph.ui.command``: the same as ``meshscope ui``, until the CLI lists it."""
    parser = argparse.ArgumentParser(prog="meshscope")
    commands = parser.add_subparsers(dest="command", required=True)
    add_parser(commands)
    args = parser.parse_args(["ui", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
