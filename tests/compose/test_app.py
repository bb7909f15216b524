"""The demo app's one script, run for real as different services: each answers as the service its
environment names, and a failing dependency shows in its own status as the faults should propagate."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.compose.stack import COMPOSE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(service: str, version: str = "v1") -> Iterator[str]:
    port = free_port()
    # SIDECAR points at a loopback address nothing listens on, so every outbound call fails.
    env = {"SERVICE": service, "VERSION": version, "SIDECAR": "127.0.0.9", "PORT": str(port)}
    process = subprocess.Popen([sys.executable, str(COMPOSE / "app" / "app.py")], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=5)


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_leaf_service_answers_as_the_service_and_version_its_environment_names() -> None:
    with running("details") as base:
        assert get(base + "/details/0") == (200, {"service": "details", "version": "v1"})


def test_productpage_fails_when_details_is_unreachable_and_reports_what_it_called() -> None:
    with running("productpage") as base:
        status, body = get(base + "/productpage")
    assert status == 500
    assert set(body) == {"service", "version", "details", "reviews"}


def test_reviews_v1_calls_nobody_while_v2_calls_ratings() -> None:
    with running("reviews", "v1") as v1, running("reviews", "v2") as v2:
        assert get(v1 + "/reviews/0") == (200, {"service": "reviews", "version": "v1"})
        status, body = get(v2 + "/reviews/0")
    assert status == 200 and body["ratings"] is None


def test_ratings_answers_503_without_its_database() -> None:
    with running("ratings") as base:
        assert get(base + "/ratings/0")[0] == 503
