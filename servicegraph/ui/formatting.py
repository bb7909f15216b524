"""Figures as the UI writes them: three significant digits in the side panel; on the graph's labels
two (``compact``), so that a label, and the element under it, changes only when the figure really does.
"""

from __future__ import annotations

from collections.abc import Callable


def number(value: float, digits: int = 3) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def compact(value: float) -> str:
    """Two significant digits below 100 (``12``, ``1.2``, ``0.012``), whole numbers to 999, then k and M."""
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if magnitude >= size * 0.9995:
            return _two_digits(value / size) + suffix
    return _two_digits(value)


def _two_digits(value: float) -> str:
    rounded = float(f"{value:.2g}")
    if abs(rounded) >= 100:
        return f"{value:.0f}"
    return f"{rounded:g}"


def rate(rps: float | None, protocol: str = "http", digits: Callable[[float], str] = number) -> str:
    if rps is None:
        return "–"
    return f"{digits(rps)} {'conn/s' if protocol == 'tcp' else 'rps'}"


def millis(value: float | None, digits: Callable[[float], str] = number) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{digits(value / 1000)} s"
    return f"{digits(value)} ms"


def percent(value: float | None, digits: Callable[[float], str] = number) -> str:
    if value is None:
        return "–"
    return f"{digits(value)}%"


def bytes_rate(value: float | None, digits: Callable[[float], str] = number) -> str:
    if value is None:
        return "–"
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= size:
            return f"{digits(value / size)} {unit}"
    return f"{digits(value)} B/s"
