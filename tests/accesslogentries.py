"""Access-log entries for parser tests: one typical request, with any field changed, ready to render."""

from __future__ import annotations


def entry(**values: str) -> dict[str, str]:
    """A client-side request from productpage to reviews v2, as render.compile_renderer takes it."""
    base = {
        "start_time": "2024-05-04T17:22:59.046Z", "method": "GET", "path": "/reviews/0", "protocol": "HTTP/1.1",
        "response_code": "200", "bytes_received": "0", "bytes_sent": "295", "duration": "24",
        "user_agent": "python-requests/2.31.0", "request_id": "6e7e5f5e", "authority": "reviews:9080",
        "upstream_host": "10.244.0.12:9080", "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
        "upstream_local_address": "10.244.0.9:43210", "downstream_local_address": "10.96.12.34:9080",
        "downstream_remote_address": "10.244.0.9:50212", "route_name": "default",
    }  # fmt: skip
    return {**base, **values}
