"""Config of the direct Elasticsearch log sink."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ElasticsearchConfig:
    enabled: bool = False
    include_original: bool = False  # each event carries the access-log line as read (event.original)

    def validate(self) -> list[str]:
        return []
