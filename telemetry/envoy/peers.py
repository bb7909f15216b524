"""Who is at an IP address: the mesh's identities, learned from what proxies report about themselves.

Text access logs name the reporting proxy (through the file path) but not the peer. Every entry
carries addresses, though: a client proxy's outbound entry shows its own pod IP as the upstream local
address, and a server proxy's inbound entry its own pod IP as the downstream local address. Learning
those (and ALS node ids, and configured peers) lets the other side's entries name their peer, as
Istio's metadata exchange would.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from telemetry.model import Workload


def address_ip(address: str) -> str:
    """``10.0.0.1:80`` -> ``10.0.0.1``; ``[::1]:80`` -> ``::1``; a bare IP is returned unchanged."""
    if address[:1] == "[":
        end = address.find("]")
        return address[1:end] if end > 0 else address
    colon = address.find(":")
    if colon < 0 or address.find(":", colon + 1) >= 0:
        return address  # no port, or a bare IPv6 address
    return address[:colon]


class PeerTable:
    """A bounded map from IP to Workload; the oldest learned entry makes room for a new one."""

    def __init__(self, max_entries: int = 65_536) -> None:
        self._max = max_entries
        # OrderedDict: popping the oldest stays O(1) under constant eviction (a dict's next(iter()) does not).
        self._by_ip: OrderedDict[str, Workload] = OrderedDict()
        self._pinned: dict[str, Workload] = {}
        self._lock = threading.Lock()
        self.evicted = 0
        self.version = 0  # changes whenever an answer of lookup() may have changed

    def pin(self, ip: str, workload: Workload) -> None:
        """A configured peer: never evicted, never overwritten by learning."""
        self._pinned[ip] = workload
        self.version += 1

    def learn(self, ip: str, workload: Workload) -> None:
        if not ip or ip in self._pinned or self._by_ip.get(ip) == workload:
            return
        with self._lock:
            self._by_ip.pop(ip, None)
            if len(self._by_ip) >= self._max:
                self._by_ip.popitem(last=False)
                self.evicted += 1
            self._by_ip[ip] = workload
            self.version += 1

    def lookup(self, ip: str) -> Workload | None:
        return self._pinned.get(ip) or self._by_ip.get(ip)

    def snapshot(self) -> tuple[dict[str, Workload], dict[str, Workload]]:
        """Copies of the (pinned, learned) entries, e.g. to hand the table to a parsing worker process."""
        with self._lock:
            return dict(self._pinned), dict(self._by_ip)

    def __len__(self) -> int:
        return len(self._by_ip) + len(self._pinned)
