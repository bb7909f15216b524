"""Certificates made for a test with the real ``openssl`` CLI: a server's for localhost and 127.0.0.1, a client's."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class KeyPair:
    cert: Path  # self-signed, so it is also the CA a peer trusts it with
    key: Path

    def cert_bytes(self) -> bytes:
        return self.cert.read_bytes()

    def key_bytes(self) -> bytes:
        return self.key.read_bytes()


def make_key_pair(folder: Path, name: str, common_name: str = "localhost") -> KeyPair:
    """A self-signed P-256 certificate valid for localhost and 127.0.0.1, and its unencrypted key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not found: install the Debian package 'openssl'")
    folder.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(folder / f"{name}.crt", folder / f"{name}.key")
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "2", "-subj", f"/CN={common_name}",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return pair
