"""The one error every parser raises: a reason for the parse-error counter, and a message for people."""

from __future__ import annotations


class ParseError(ValueError):
    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or reason.replace("_", " "))
