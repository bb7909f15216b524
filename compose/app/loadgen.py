"""The load generator: GETs TARGET (the ingress gateway) RATE times a second, forever."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

TARGET = os.environ.get("TARGET", "http://istio-ingressgateway:8080/productpage")
RATE = float(os.environ.get("RATE", "5"))

while True:
    started = time.monotonic()
    try:
        urllib.request.urlopen(TARGET, timeout=10).read()
    except (urllib.error.URLError, OSError):
        pass  # faults are expected; the access logs count them
    time.sleep(max(0.0, 1 / RATE - (time.monotonic() - started)))
