"""Real external programs for tests: free ports, a running meshscope, a running Prometheus."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[ThreadingHTTPServer]:
    """A stand-in HTTP server on 127.0.0.1 (``port`` 0: any free one), served from a daemon thread."""
    server = start_serving(handler, port)
    try:
        yield server
    finally:
        stop_serving(server)


def start_serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def stop_serving(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def wait_for(condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the thing polled may not be up yet
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {last_error}" if last_error else ""))


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()  # type: ignore[no-any-return]


@contextmanager
def meshscope_process(args: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``meshscope ARGS`` as a real process; stopped with SIGTERM (and checked to exit cleanly)."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "telemetry.cli", *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def prometheus(
    binary: str,
    workdir: Path,
    scrape_targets: list[str],
    rule_files: list[str] | None = None,
    jobs: dict[str, list[str]] | None = None,
) -> Iterator[str]:
    """A real Prometheus on a free loopback port scraping every second; yields its URL.

    ``scrape_targets`` are scraped as job ``meshscope``; ``jobs`` adds more jobs, job name -> targets.
    """
    port = free_port()
    targets_by_job = {"meshscope": scrape_targets} if scrape_targets else {}
    targets_by_job.update(jobs or {})
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files or [],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in targets_by_job.items()
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config))
    data = workdir / "prometheus-data"
    data.mkdir()
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config_path}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{url}/-/ready"), timeout=30, what="Prometheus to be ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def prometheus_query(url: str, query: str) -> list[dict[str, Any]]:
    body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]  # type: ignore[no-any-return]


def env_with_repo_on_path() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
