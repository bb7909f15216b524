"""The compose stack's files, read the way the tests need them: compose resolved by docker-compose, and
each Envoy config rendered by the sidecars' own render.sh (with a stand-in for the envoy binary)."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from conftest import require_program

COMPOSE = Path(__file__).parents[2] / "compose"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"


def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def resolved_compose(profile: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`docker-compose config` for one profile: anchors merged and ${VAR:-default} interpolated."""
    return copy.deepcopy(_resolved(profile, tuple(sorted((env or {}).items()))))


@functools.cache
def _resolved(profile: str, env_items: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    env = dict(env_items)
    program = require_program("docker-compose", "docker-compose")
    result = subprocess.run(
        [program, "-f", str(COMPOSE_FILE), "--profile", profile, "config"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def envoy_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("envoyproxy/envoy:")
    }


def render_envoy(service: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The bootstrap a sidecar would start with: its entrypoint run by sh, envoy replaced by `cat`."""
    entrypoint = [part.replace("/etc/envoy", str(COMPOSE / "envoy")) for part in service["entrypoint"]]
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "envoy").write_text('#!/bin/sh\ncat "$2"\n')
    (fake / "envoy").chmod(0o755)
    environment = {key: str(value) for key, value in (service.get("environment") or {}).items()}
    result = subprocess.run(
        entrypoint,
        capture_output=True,
        text=True,
        env={"PATH": f"{fake}:/usr/bin:/bin", **environment},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def walk(node: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in the document."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found += walk(v, key)
    elif isinstance(node, list):
        for item in node:
            found += walk(item, key)
    return found
