"""A real HTTP server answering the part of Elasticsearch's API the sink uses, for tests.

Elasticsearch itself cannot run here, so this plays it on a loopback port: ``_ilm/policy``,
``_index_template`` and ``_bulk`` (NDJSON decoded pair by pair), with the ``X-Elastic-Product`` header
the 8.x client insists on. Each bulk document is checked against the mapping of the index template put
for its data stream (the shipped one when none was put) with ``mapping_check``, and refused per item
with ``document_parsing_exception`` as Elasticsearch would. Tests can script failures: whole requests
answered with a status, bodies over a size answered 413, ILM requests refused (403), or items refused
with 429. A bulk write to a name no data stream template matches creates a plain index, as
Elasticsearch does, unless the request says ``require_data_stream=true``: then the item is refused (404).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from telemetry.exporters.elasticsearch import templates
from tests.telemetry.exporters.elasticsearch.mapping_check import document_problems

from realparts import free_port, start_serving, stop_serving


class FakeElasticsearch:
    def __init__(self, port: int = 0, product_header: bool = True) -> None:
        self.port = port or free_port()
        self.product_header = product_header
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.headers: list[dict[str, str]] = []
        self.policies: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.documents: list[dict[str, Any]] = []  # accepted, in order
        self.refused: list[tuple[dict[str, Any], list[str]]] = []  # mapping errors: document, problems
        self.item_attempts = 0
        self.request_failures: deque[int] = deque()  # statuses for the next whole bulk requests
        self.items_to_throttle = 0  # the next N bulk items are refused with 429
        self.ilm_status: int | None = None  # answer every _ilm request with this status (403: no privilege)
        self.max_body_bytes = 0  # bulk bodies larger than this are answered 413 (0: no limit)
        self.bulk_sizes: list[int] = []  # bytes of each bulk body, answered or not
        self.data_streams: set[str] = set()  # created on the first write through a data stream template
        self.plain_indices: set[str] = set()  # auto-created without a template: what must not happen
        self.bulk_delay = 0.0  # seconds each bulk request takes to answer (a slow cluster)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeElasticsearch:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: Any) -> None:
                data = orjson.dumps(body)
                self.send_response(status)
                if fake.product_header:
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with fake.lock:
                    fake.requests.append((self.command, self.path))
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                path, _, query = self.path.partition("?")
                if path.endswith("/_bulk") and fake.bulk_delay:
                    time.sleep(fake.bulk_delay)
                status, answer = fake.route(self.command, path, body, query)
                self._answer(status, answer)

            do_GET = do_PUT = do_POST = _handle  # noqa: N815 - http.server's hook names

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = start_serving(Handler, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            stop_serving(self._server)
            self._server = None

    def route(self, method: str, path: str, body: bytes, query: str = "") -> tuple[int, Any]:
        if found := re.fullmatch(r"/_ilm/policy/([^/]+)", path):
            if self.ilm_status is not None:
                kind = "security_exception"
                return self.ilm_status, error(kind, "action [cluster:admin/ilm/get] is unauthorized", self.ilm_status)
            return self._policy(method, found[1], body)
        if (found := re.fullmatch(r"/_index_template/([^/]+)", path)) and method == "PUT":
            with self.lock:
                self.templates[found[1]] = orjson.loads(body)
            return 200, {"acknowledged": True}
        if path == "/_bulk" and method in ("POST", "PUT"):
            return self._bulk(body, "require_data_stream=true" in query)
        return 400, error("invalid_request_exception", f"no handler for {method} {path}", 400)

    def _policy(self, method: str, name: str, body: bytes) -> tuple[int, Any]:
        with self.lock:
            if method == "PUT":
                self.policies[name] = orjson.loads(body)
                return 200, {"acknowledged": True}
            if name in self.policies:
                return 200, {name: {"version": 1, "policy": self.policies[name]["policy"]}}
        return 404, error("resource_not_found_exception", f"Lifecycle policy not found: {name}", 404)

    def with_template(self, data_stream: str = "meshscope-access") -> FakeElasticsearch:
        """The shipped index template for ``data_stream``, as an operator would have put it."""
        self.templates[data_stream] = templates.index_template(data_stream, data_stream)
        return self

    def _template_for(self, index: str) -> dict[str, Any] | None:
        for template in self.templates.values():
            if index in template["index_patterns"]:
                return template
        return None

    def mapping_for(self, index: str) -> dict[str, Any]:
        template = self._template_for(index)
        mappings: dict[str, Any] = template["template"]["mappings"] if template else templates.mapping()
        return mappings

    def _bulk(self, body: bytes, require_data_stream: bool = False) -> tuple[int, Any]:
        with self.lock:
            self.bulk_sizes.append(len(body))
            if self.max_body_bytes and len(body) > self.max_body_bytes:
                return 413, error("content_too_long", "request body is too large", 413)
            if self.request_failures:
                status = self.request_failures.popleft()
                return status, error("cluster_block_exception", "scripted failure", status)
        lines = body.splitlines()
        items = []
        for action_line, source_line in zip(lines[::2], lines[1::2], strict=True):
            ((op, meta),) = orjson.loads(action_line).items()
            document = orjson.loads(source_line)
            items.append({op: self._index(op, meta["_index"], document, require_data_stream)})
        return 200, {"took": 1, "errors": any(next(iter(i.values()))["status"] >= 300 for i in items), "items": items}

    def _index(self, op: str, index: str, document: dict[str, Any], require_data_stream: bool) -> dict[str, Any]:
        with self.lock:
            self.item_attempts += 1
            if index not in self.data_streams and index not in self.plain_indices:
                template = self._template_for(index)
                if template is not None and "data_stream" in template:
                    self.data_streams.add(index)
                elif require_data_stream:
                    reason = (
                        f"no such index [{index}] and the index creation request requires a data stream, "
                        "but no matching index template with data stream template was found for it"
                    )
                    return {
                        "_index": index,
                        "status": 404,
                        "error": {"type": "index_not_found_exception", "reason": reason},
                    }
                else:
                    self.plain_indices.add(index)
            if self.items_to_throttle:
                self.items_to_throttle -= 1
                reason = "rejected execution of coordinating operation"
                return {
                    "_index": index,
                    "status": 429,
                    "error": {"type": "es_rejected_execution_exception", "reason": reason},
                }
            if op != "create":
                return {"_index": index, "status": 400, "error": {"type": "illegal_argument_exception", "reason": op}}
            problems = document_problems(document, self.mapping_for(index))
            if problems:
                self.refused.append((document, problems))
                reason = "; ".join(problems)
                return {
                    "_index": index,
                    "status": 400,
                    "error": {"type": "document_parsing_exception", "reason": reason},
                }
            self.documents.append(document)
            return {
                "_index": f".ds-{index}-000001",
                "_id": str(len(self.documents)),
                "status": 201,
                "result": "created",
            }

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.documents)

    def calls(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.requests)


def error(kind: str, reason: str, status: int) -> dict[str, Any]:
    return {
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status,
    }
