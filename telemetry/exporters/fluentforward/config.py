"""Config of the Fluentd forward log sink."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FluentForwardConfig:
    enabled: bool = False
    include_original: bool = False  # each event carries the access-log line as read (event.original)

    def validate(self) -> list[str]:
        return []
