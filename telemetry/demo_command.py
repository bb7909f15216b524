"""``meshscope demo``: the collector and a simulated mesh in one process, everything on loopback."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import webbrowser
from pathlib import Path
from typing import Any

import yaml

from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping


def demo_config(log_dir: Path, base: dict[str, Any] | None = None) -> Config:
    """The collector config of the demo: the file receiver pointed at the simulated proxies' logs."""
    data: dict[str, Any] = base or {}
    receivers = data.setdefault("receivers", {})
    filelog = receivers.setdefault("filelog", {})
    filelog.update(
        {
            "enabled": True,
            "include": [str(log_dir / "*" / "istio-proxy" / "*.log")],
            "start_at": "beginning",
            "checkpoint_file": "",
        }
    )
    filelog.setdefault("dead_letter", {}).setdefault("path", str(log_dir.parent / "dead-letter.jsonl"))
    receivers.setdefault("als", {})["enabled"] = True
    return load_mapping(Config, data)


def run_demo(args: argparse.Namespace) -> int:
    from telemetry.cli import _addresses, _print_errors
    from telemetry.collector import Collector, run_until_signalled
    from telemetry.demo.config import DemoConfig
    from telemetry.demo.mesh import SimulatedMesh

    # Laid out like a node's /var/log/pods, so the file receiver names each proxy from its path.
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="meshscope-demo-")) / "pods"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        base = None
        if args.config:
            with open(args.config, encoding="utf-8") as handle:
                base = yaml.safe_load(handle) or {}
        collector = Collector(demo_config(log_dir, base))
    except ConfigError as error:
        _print_errors(error, args.config or "demo config")
        return 2
    mesh: list[SimulatedMesh] = []

    def started() -> None:
        # The simulated proxies and applications send to whichever receivers run, on their real ports.
        als = collector.receiver("als")
        otlp = collector.receiver("otlp")
        zipkin = collector.receiver("zipkin")
        simulated = SimulatedMesh(
            DemoConfig(rate=args.rate),
            log_dir,
            als_endpoint=f"127.0.0.1:{als.port}" if als is not None else None,  # type: ignore[attr-defined]
            zipkin_endpoint=f"127.0.0.1:{zipkin.port}" if zipkin is not None else None,  # type: ignore[attr-defined]
            otlp_endpoint=(
                f"127.0.0.1:{otlp.http_port}"  # type: ignore[attr-defined]
                if otlp is not None and otlp.http is not None  # type: ignore[attr-defined]
                else None
            ),
        )
        simulated.start()
        mesh.append(simulated)
        print("meshscope demo running (Ctrl-C to stop):", flush=True)
        print("\n".join(_addresses(collector)), flush=True)
        print(f"  proxy logs   {log_dir}", flush=True)
        if not args.no_browser and sys.stdout.isatty():
            if collector.graph is not None and collector.config.graph.ui_enabled:
                webbrowser.open(f"http://127.0.0.1:{collector.graph.port}/")
            elif collector.metrics is not None:
                webbrowser.open(f"http://127.0.0.1:{collector.metrics.port}/metrics")

    def stop_mesh() -> None:
        for simulated in mesh:
            simulated.shutdown()

    try:
        run_until_signalled(collector, started, args.duration, stop_mesh)
    except OSError as error:
        print(f"meshscope demo: {error}", file=sys.stderr)
        return 1
    finally:
        if args.log_dir is None:
            # A folder the demo made for itself goes with it; one the user named stays.
            shutil.rmtree(log_dir.parent, ignore_errors=True)
    return 0
