"""Envoy's short response-flag codes for the booleans of the ALS ``ResponseFlags`` message."""

from __future__ import annotations

from envoy.data.accesslog.v3.accesslog_pb2 import ResponseFlags

# Field name -> the code Envoy prints for %RESPONSE_FLAGS%. ``unauthorized_details`` is a message,
# not a boolean: its presence is the UAEX flag.
SHORT_CODES: dict[str, str] = {
    "failed_local_healthcheck": "LH",
    "no_healthy_upstream": "UH",
    "upstream_request_timeout": "UT",
    "local_reset": "LR",
    "upstream_remote_reset": "UR",
    "upstream_connection_failure": "UF",
    "upstream_connection_termination": "UC",
    "upstream_overflow": "UO",
    "no_route_found": "NR",
    "delay_injected": "DI",
    "fault_injected": "FI",
    "rate_limited": "RL",
    "unauthorized_details": "UAEX",
    "rate_limit_service_error": "RLSE",
    "downstream_connection_termination": "DC",
    "upstream_retry_limit_exceeded": "URX",
    "stream_idle_timeout": "SI",
    "invalid_envoy_request_headers": "IH",
    "downstream_protocol_error": "DPE",
    "upstream_max_stream_duration_reached": "UMSDR",
    "response_from_cache_filter": "RFCF",
    "no_filter_config_found": "NFCF",
    "duration_timeout": "DT",
    "upstream_protocol_error": "UPE",
    "no_cluster_found": "NC",
    "overload_manager": "OM",
    "dns_resolution_failure": "DF",
    "downstream_remote_reset": "DR",
}


def short_flags(flags: ResponseFlags) -> str:
    """``UF,URX`` style text, in field order (which is the order Envoy prints); "" when none is set.

    ListFields yields only the set fields, so an entry without flags costs one call. A flag added by a
    newer Envoy than this table knows is left out rather than invented.
    """
    return ",".join(code for field, _ in flags.ListFields() if (code := SHORT_CODES.get(field.name)))
