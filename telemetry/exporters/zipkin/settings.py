"""The Zipkin exporter's effective settings: the config, then the standard OTEL_EXPORTER_ZIPKIN_* variables.

A value set in the config wins; else ``OTEL_EXPORTER_ZIPKIN_ENDPOINT`` (a full URL, used as it is) and
``OTEL_EXPORTER_ZIPKIN_TIMEOUT`` (milliseconds); else the default timeout of 10 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telemetry.exporters.otel_env import first_set, parse_timeout_ms

if TYPE_CHECKING:
    from telemetry.exporters.zipkin.config import ZipkinConfig

DEFAULT_TIMEOUT = 10.0
SPANS_PATH = "/api/v2/spans"


@dataclass(frozen=True)
class ZipkinSettings:
    url: str
    headers: tuple[tuple[str, str], ...]
    timeout: float
    compress: bool


def resolve_zipkin(config: ZipkinConfig, environ: Mapping[str, str]) -> ZipkinSettings:
    """Raises ValueError("key: message") when a value, from wherever it came, is unusable."""
    if config.endpoint:
        url = _spans_url(config.endpoint)
    else:
        found = first_set(environ, "OTEL_EXPORTER_ZIPKIN_ENDPOINT")
        if not found:
            raise ValueError("endpoint: not set (set it here, or OTEL_EXPORTER_ZIPKIN_ENDPOINT)")
        url = found[1]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint: {url!r} is not an http(s) URL")
    timeout = config.timeout
    if timeout is None:
        found = first_set(environ, "OTEL_EXPORTER_ZIPKIN_TIMEOUT")
        try:
            timeout = parse_timeout_ms(found[1]) if found else DEFAULT_TIMEOUT
        except ValueError as error:
            raise ValueError(f"timeout: {found[0] if found else ''} {error}") from None
    return ZipkinSettings(url, tuple(config.headers.items()), timeout, config.compression == "gzip")


def _spans_url(endpoint: str) -> str:
    if "://" not in endpoint:
        endpoint = f"http://{endpoint}"
    path = urlsplit(endpoint).path
    if path in ("", "/"):
        return endpoint.rstrip("/") + SPANS_PATH
    return endpoint
