"""One Bookinfo-shaped service, chosen by environment: SERVICE (productpage, details, reviews, ratings), VERSION.

It listens on :9080; calls to other services go through its sidecar's outbound listener (SIDECAR, :15001,
the destination named by the Host header), and ratings reaches redis through the sidecar's TCP :16379.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = os.environ.get("SERVICE", "productpage")
VERSION = os.environ.get("VERSION", "v1")
SIDECAR = os.environ.get("SIDECAR", "127.0.0.1")
PORT = int(os.environ.get("PORT", "9080"))
CALLS = {"productpage": ["details", "reviews"], "reviews": {"v1": []}.get(VERSION, ["ratings"])}
FORWARDED = ("x-request-id", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags")


def call(service: str, path: str, headers: dict[str, str]) -> tuple[int, object]:
    request = urllib.request.Request(f"http://{SIDECAR}:15001{path}", headers={**headers, "Host": f"{service}:9080"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return 503, None


def redis_incr(key: str) -> int:
    with socket.create_connection((SIDECAR, 16379), timeout=2) as connection:
        connection.sendall(f"INCR {key}\r\n".encode())
        return int(connection.recv(64).strip().lstrip(b":") or 0)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            return self.reply(200, {"status": "ok"})
        # Trace context and request id pass from the inbound request to the outbound ones, as Istio requires.
        headers = {name: self.headers[name] for name in FORWARDED if self.headers.get(name)}
        body: dict[str, object] = {"service": SERVICE, "version": VERSION}
        status = 200
        for service in CALLS.get(SERVICE, []):
            code, body[service] = call(service, f"/{service}/0", headers)
            if code >= 500 and SERVICE == "productpage" and service == "details":
                status = 500
        if SERVICE == "ratings":
            try:
                body["stars"] = redis_incr("ratings") % 5 + 1
            except OSError:
                status = 503
        self.reply(status, body)

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # the sidecar logs every request
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
