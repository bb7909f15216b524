"""Config of the direct Elasticsearch log sink."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from telemetry.exporters.export_queue import ExportQueueConfig

# Elasticsearch's rules for an index or data stream name, and ILM's for a policy name (a subset that is
# also safe in a URL path): lowercase, no leading -, _ or +, none of \ / * ? " < > | , # : or space.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,254}")


@dataclass
class ElasticsearchConfig(ExportQueueConfig):
    enabled: bool = False
    hosts: list[str] = field(default_factory=lambda: ["http://127.0.0.1:9200"])
    # Documents go to a data stream (append-only, @timestamp, rollover by ILM): what access logs are.
    # The shipped index template matches this name exactly; Fluentd in compose/ writes to the same one.
    data_stream: str = "meshscope-access"
    ilm_policy: str = "meshscope-access"
    # Put the ILM policy (only when absent: retention is the operator's to change) and the index template
    # (always: it is meshscope's mapping) before the first documents, and again after each reconnect.
    install_template: bool = True
    # Credentials: basic auth or an API key (the base64 "id:key" form Kibana shows). Keep them out of the
    # file with MESHSCOPE_EXPORTERS__ELASTICSEARCH__PASSWORD / __API_KEY; they are never logged.
    username: str = ""
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    verify_certs: bool = True
    ca_certs: str = ""  # a PEM bundle for a private CA; empty: the system's trust store
    request_timeout: float = 10.0  # seconds per bulk request
    include_original: bool = False  # each event carries the access-log line as read (event.original)
    # The queue (in events) and retry settings of ExportQueueConfig, with defaults for logs. An event is
    # ~1 KB in Elasticsearch's bulk body and a Record ~0.5 KB here, so 50,000 are ~25 MB held while
    # Elasticsearch is away: a minute of a busy mesh's access logs.
    queue_size: int = 50_000
    batch_size: int = 2000  # events per bulk request
    # "wait": file tailing waits for room in the queue while Elasticsearch answers, rather than the oldest
    # being dropped (see the forward sink's when_full for what that costs).
    when_full: Literal["drop_oldest", "wait"] = "drop_oldest"

    def validate(self) -> list[str]:
        errors = super().validate()  # retry: the loader validates nested sections itself
        if not self.hosts:
            errors.append("hosts: at least one URL is needed")
        for index, host in enumerate(self.hosts):
            errors += [f"hosts[{index}]: {message}" for message in _host_problems(host)]
        for key in ("data_stream", "ilm_policy"):
            if not _NAME.fullmatch(getattr(self, key)):
                errors.append(f"{key}: lowercase letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'")
        if self.password and not self.username:
            errors.append("password: set username too")
        if self.api_key and self.username:
            errors.append("api_key: use either api_key or username/password, not both")
        if self.request_timeout <= 0:
            errors.append("request_timeout: must be positive")
        return errors


def _host_problems(host: str) -> list[str]:
    try:
        url = urlsplit(host)
        url.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as error:
        return [f"not a URL ({error})"]
    if url.scheme not in ("http", "https") or not url.hostname:
        return ["expected http://host:port or https://host:port"]
    if url.username or url.password:
        # A URL is printed in errors and logs; a password in it would be too.
        return ["put credentials in username/password or api_key, not in the URL"]
    return []
