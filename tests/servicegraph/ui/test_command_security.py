"""``meshscope ui`` serving its own page with a bearer token and TLS: a real process, a real HTTPS client."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.certs import KeyPair, make_key_pair
from tests.servicegraph.graphonly import start_graph_collector

from realparts import free_port, wait_for

TOKEN = "feedfacecafebeef0123456789abcdef"


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    collector = start_graph_collector({"resolution": 3600, "ui_enabled": False})
    assert collector.graph is not None
    yield f"http://127.0.0.1:{collector.graph.port}"
    collector.shutdown()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("tls"), "ui")


def _ui(*argv: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "UI_TOKEN": TOKEN}
    command = [sys.executable, "-m", "telemetry.cli", "ui", *argv]
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _get(url: str, context: ssl.SSLContext, token: str = "") -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_the_page_is_served_over_tls_only_to_holders_of_the_token(api_url: str, pair: KeyPair) -> None:
    port = free_port()
    process = _ui(
        "--source", api_url, "--listen", f"127.0.0.1:{port}", "--auth-token-env", "UI_TOKEN",
        "--tls-cert", str(pair.cert), "--tls-key", str(pair.key),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert f"https://127.0.0.1:{port}/" in process.stdout.readline()
        trusting = ssl.create_default_context(cafile=str(pair.cert))
        base = f"https://127.0.0.1:{port}"
        wait_for(lambda: _get(f"{base}/api/health", trusting) == 200, what="the UI to answer over TLS")
        assert _get(f"{base}/", trusting) == 401
        assert _get(f"{base}/", trusting, token="wrong-token-0123456789") == 401
        assert _get(f"{base}/", trusting, token=TOKEN) == 200
        with pytest.raises(urllib.error.URLError):  # a client that does not trust the certificate
            _get(f"{base}/", ssl.create_default_context(), token=TOKEN)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--auth-token-env", "NO_SUCH_VARIABLE_HERE"],
            "--auth-token-env: the environment variable NO_SUCH_VARIABLE_HERE",
        ),
        (["--tls-cert", "/nonexistent.crt"], "--tls-key: needed when"),
        (
            ["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"],
            "--tls-cert: cannot read '/nonexistent.crt'",
        ),
    ],
)
def test_bad_security_flags_exit_2_naming_the_flag(api_url: str, flags: list[str], message: str) -> None:
    process = _ui("--source", api_url, "--listen", "127.0.0.1:0", *flags)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert message in err


def test_a_token_too_short_to_guess_is_refused(api_url: str, tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "telemetry.cli", "ui", "--source", api_url, "--listen", "127.0.0.1:0",
         "--auth-token-env", "SHORT"],
        env={**os.environ, "SHORT": "abc"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert process.returncode == 2
    assert "--auth-token-env:" in process.stderr and "abc" not in process.stderr.replace("--auth", "")
