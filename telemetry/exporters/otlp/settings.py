"""The OTLP exporter's effective settings: the config, then the standard OTEL_* variables, then defaults.

Precedence, per value: a value set in meshscope's config (or its MESHSCOPE_* override) wins; else
``OTEL_EXPORTER_OTLP_TRACES_<X>``; else ``OTEL_EXPORTER_OTLP_<X>``; else the default. As the
specification says, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used as it is while
``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base to which HTTP appends ``/v1/traces``, and timeouts in the
variables are milliseconds (in the config, seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telemetry.exporters.otel_env import first_set, parse_headers, parse_timeout_ms

if TYPE_CHECKING:
    from telemetry.exporters.otlp.config import OtlpConfig

PROTOCOLS = ("grpc", "http/protobuf")
COMPRESSIONS = ("none", "gzip")
DEFAULT_TIMEOUT = 10.0
TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class OtlpSettings:
    protocol: str  # grpc | http/protobuf
    endpoint: str  # gRPC: the channel target host:port; HTTP: the full URL posted to
    secure: bool  # gRPC over TLS (an https:// endpoint)
    headers: tuple[tuple[str, str], ...]
    timeout: float  # seconds
    compression: str  # none | gzip


def _variable(environ: Mapping[str, str], suffix: str) -> tuple[str, str] | None:
    return first_set(environ, f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}")


def resolve_otlp(config: OtlpConfig, environ: Mapping[str, str]) -> OtlpSettings:
    """Raises ValueError("key: message") when a value, from wherever it came, is unusable."""
    protocol: str = config.protocol
    if not protocol:
        found = _variable(environ, "PROTOCOL")
        protocol = found[1] if found else "grpc"
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol: {found[0] if found else ''}={protocol!r} is not one of {', '.join(PROTOCOLS)}")

    compression: str = config.compression
    if not compression:
        found = _variable(environ, "COMPRESSION")
        compression = found[1].lower() if found else "none"
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression: {found[0] if found else ''}={compression!r} is not none or gzip")

    timeout = config.timeout
    if timeout is None:
        found = _variable(environ, "TIMEOUT")
        try:
            timeout = parse_timeout_ms(found[1]) if found else DEFAULT_TIMEOUT
        except ValueError as error:
            raise ValueError(f"timeout: {found[0] if found else ''} {error}") from None

    headers = dict(config.headers)
    if not headers:
        found = _variable(environ, "HEADERS")
        if found:
            try:
                headers = parse_headers(found[1])
            except ValueError as error:
                raise ValueError(f"headers: {found[0]}: {error}") from None

    endpoint, as_is = _endpoint(config, environ)
    if protocol == "grpc":
        target, secure = _grpc_target(endpoint)
        # gRPC metadata keys must be lowercase.
        header_items = tuple((key.lower(), value) for key, value in headers.items())
        return OtlpSettings(protocol, target, secure, header_items, timeout, compression)
    url = _http_url(endpoint, as_is)
    return OtlpSettings(protocol, url, url.startswith("https:"), tuple(headers.items()), timeout, compression)


def _endpoint(config: OtlpConfig, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The endpoint and whether it is a full URL to use as it is."""
    if config.endpoint:
        return config.endpoint, False
    found = first_set(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if found:
        return found[1], True
    found = first_set(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if found:
        return found[1], False
    raise ValueError(
        "endpoint: not set (set it here, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT)"
    )


def _grpc_target(endpoint: str) -> tuple[str, bool]:
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ValueError(f"endpoint: {endpoint!r} is not http(s)://host:port")
        return parts.netloc, parts.scheme == "https"
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"endpoint: {endpoint!r} is not host:port")
    return endpoint, False


def _http_url(endpoint: str, as_is: bool) -> str:
    if "://" not in endpoint:
        endpoint = f"http://{endpoint}"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint: {endpoint!r} is not an http(s) URL")
    if as_is or parts.path.endswith(TRACES_PATH):
        return endpoint
    return endpoint.rstrip("/") + TRACES_PATH
