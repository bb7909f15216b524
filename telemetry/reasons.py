"""Reasons for people: the one short line a banner, a status entry or a log shows of an error's text."""

from __future__ import annotations

import re

# Python's "[Errno 111] Connection refused": the words say it, the number does not.
_ERRNO = re.compile(r"\[Errno -?\d+\] ")
_ERRNO_WORDS = re.compile(r"\[Errno -?\d+\] ([\w .,'-]+)")
MAX_REASON = 160


def short_reason(text: str, limit: int = MAX_REASON) -> str:
    """``text`` on one line, without errno numbers, cut to ``limit`` characters (ending in "…" when cut)."""
    text = _ERRNO.sub("", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def errno_words(text: str) -> str:
    """The words after the first "[Errno N]" in ``text`` (a nested urllib3 message), or ""."""
    found = _ERRNO_WORDS.search(text)
    return found[1].strip() if found else ""
