"""The service graph page at scale, measured in a real headless Chromium (Debian's chromium + chromedriver).

A synthetic mesh of N nodes and 4 x N edges (a layered call graph over N / 25 namespaces, the kinds
mixed) is served through a fake backend by the real UI (attach_ui on a Flask app, werkzeug, this
process). The browser loads the page, and the benchmark reads what happened from the page itself:

- time to first graph: navigation start to the first Cytoscape render holding all N nodes (page load,
  first callback, the hierarchical layout, the first draw);
- per refresh (every 2 s, every figure of every edge moved by up to ±``--jitter``, 3 % by default,
  about what sampling noise does to the rates of a live mesh over a 5 minute window; 0.2 makes most
  labels change, the worst case): the request's time in the server, the payload size, and the
  browser's time from the response to the first render after it (Dash, the Cytoscape diff, style and
  draw), with the main thread's long tasks (>50 ms) in that span;
- a refresh where one node appears: whether any existing node moved.

    python benchmarks/ui_scale.py [--sizes 50,500,2000] [--refreshes 6] [--jitter 0.03]

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import logging  # noqa: E402

from flask import Flask  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from servicegraph.ui.app import attach_ui  # noqa: E402
from servicegraph.ui.settings import UiSettings  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)
KINDS = ("workload", "workload", "workload", "service", "service", "app", "database", "external")
EDGES_PER_NODE = 4

# Installed before the page's own scripts: timestamps of the graph callback's requests and of
# Cytoscape's renders, and the long tasks, kept on window.__bench for the benchmark to read.
INSTRUMENT = """
window.__bench = {requests: [], renders: [], longtasks: [], firstGraph: null, expected: 0};
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { window.__bench.longtasks.push([e.startTime, e.duration]); });
}).observe({entryTypes: ['longtask']});
var originalFetch = window.fetch;
window.fetch = function (input, init) {
  var body = init && typeof init.body === 'string' ? init.body : '';
  var graph = body.indexOf('graph.elements') >= 0;
  var started = performance.now();
  return originalFetch.apply(this, arguments).then(function (response) {
    if (!graph) return response;
    var record = {started: started, answered: performance.now(), bytes: 0, status: response.status};
    window.__bench.requests.push(record);
    response.clone().text().then(function (text) { record.bytes = text.length; record.read = performance.now(); });
    return response;
  });
};
var watch = setInterval(function () {
  var box = document.getElementById('graph');
  var cy = box && box._cyreg && box._cyreg.cy;
  if (!cy) return;
  clearInterval(watch);
  cy.on('render', function () {
    var now = performance.now();
    window.__bench.renders.push(now);
    if (window.__bench.firstGraph === null && cy.nodes().length >= window.__bench.expected && window.__bench.expected > 0) {
      window.__bench.firstGraph = now;
    }
  });
}, 20);
"""


class SyntheticMesh:
    """A GraphBackend answering with a synthetic graph document of ``size`` nodes; figures jitter per call."""

    def __init__(self, size: int, jitter: float, seed: int = 7) -> None:
        self.size = size
        self.jitter = jitter
        self.extra_node = False
        self._random = random.Random(seed)
        namespaces = [f"ns-{index:02d}" for index in range(max(1, size // 25))]
        layers = max(4, int(size**0.5 / 2))
        self._nodes = []
        for index in range(size):
            kind = KINDS[index % len(KINDS)]
            namespace = namespaces[index % len(namespaces)]
            self._nodes.append(
                {
                    "id": f"{kind}:{namespace}:svc-{index:04d}",
                    "kind": kind,
                    "name": f"svc-{index:04d}",
                    "namespace": namespace,
                    "layer": index * layers // size,
                }
            )
        by_layer: dict[int, list[dict[str, Any]]] = {}
        for node in self._nodes:
            by_layer.setdefault(node["layer"], []).append(node)
        self._edges: list[tuple[str, str, str, float, float, float]] = []
        seen = set()
        while len(self._edges) < EDGES_PER_NODE * size:
            source = self._random.choice(self._nodes)
            targets = by_layer.get(source["layer"] + 1) or by_layer[0]
            target = self._random.choice(targets)
            key = (source["id"], target["id"])
            if key in seen or key[0] == key[1]:
                continue
            seen.add(key)
            protocol = self._random.choice(("http", "http", "http", "grpc", "tcp"))
            # A few edges fail now and then, most never; latencies spread over two decades.
            error_pct = self._random.choice((0.0,) * 8 + (0.5, 12.0))
            rps = 10 ** self._random.uniform(-1, 2.5)
            self._edges.append(
                (source["id"], target["id"], protocol, rps, error_pct, 10 ** self._random.uniform(0.5, 3))
            )

    def graph(self, window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> dict[str, Any]:
        def jitter(value: float) -> float:
            return value * self._random.uniform(1 - self.jitter, 1 + self.jitter)

        elements: list[dict[str, Any]] = []
        received: dict[str, float] = {}
        sent: dict[str, float] = {}
        edges = []
        for source, target, protocol, base_rps, base_error_pct, base_p95 in self._edges:
            rps = jitter(base_rps)
            error_pct = jitter(base_error_pct)
            p95 = jitter(base_p95)
            received[target] = received.get(target, 0.0) + rps
            sent[source] = sent.get(source, 0.0) + rps
            health = "failing" if error_pct >= 10 else "degraded" if error_pct > 0 else "healthy"
            edges.append(
                {
                    "id": f"{source}->{target}:{protocol}",
                    "source": source,
                    "target": target,
                    "protocol": protocol,
                    "origin": "mesh",
                    "health": health,
                    "idle": False,
                    "requests": rps * 300,
                    "rps": rps,
                    "errors": rps * 3 * error_pct,
                    "error_pct": error_pct,
                    "client_errors": 0.0,
                    "client_error_pct": 0.0,
                    "p50_ms": p95 / 4,
                    "p95_ms": p95,
                    "p99_ms": p95 * 1.6,
                    "mtls_pct": 100.0 if protocol != "tcp" else 0.0,
                    "bytes_sent_per_s": rps * 900,
                    "bytes_received_per_s": rps * 300,
                    "response_codes": {"200": rps * 300, "503": rps * 3 * error_pct},
                    "grpc_statuses": {},
                    "response_flags": {"-": rps * 300},
                }
            )
        nodes = self._nodes + (
            [
                {
                    "id": "workload:ns-00:newcomer",
                    "kind": "workload",
                    "name": "newcomer",
                    "namespace": "ns-00",
                    "layer": 1,
                }
            ]
            if self.extra_node
            else []
        )
        if self.extra_node:
            edges.append(
                {
                    **edges[0],
                    "id": f"{self._nodes[0]['id']}->workload:ns-00:newcomer:http",
                    "source": self._nodes[0]["id"],
                    "target": "workload:ns-00:newcomer",
                }
            )
        for node in nodes:
            elements.append(
                {
                    "data": {
                        "id": node["id"],
                        "kind": node["kind"],
                        "name": node["name"],
                        "namespace": node["namespace"],
                        "app": node["name"],
                        "version": "v1",
                        "workload": node["name"],
                        "service": node["name"],
                        "virtual": False,
                        "health": "healthy",
                        "idle": False,
                        "rps": received.get(node["id"], 0.0),
                        "error_pct": 0.0,
                        "p50_ms": 5.0,
                        "p95_ms": 50.0,
                        "p99_ms": 90.0,
                        "mtls_pct": 100.0,
                        "out_rps": sent.get(node["id"], 0.0),
                        "out_error_pct": 0.0,
                    },
                    "classes": f"{node['kind']} healthy",
                }
            )
        elements += [{"data": edge, "classes": f"{edge['protocol']} {edge['health']}"} for edge in edges]
        total = sum(received.values())
        summary = {
            "rps": total,
            "success_pct": 99.0,
            "nodes": len(nodes),
            "edges": len(edges),
            "nodes_degraded": 0,
            "nodes_failing": 0,
        }
        return {
            "graph_type": graph_type,
            "window": 300.0,
            "source": "synthetic",
            "summary": summary,
            "elements": elements,
        }

    def node(self, node_id: str, window: str, graph_type: str) -> dict[str, Any]:
        return {"node": {"id": node_id}, "inbound": [], "outbound": [], "series": []}

    def edge(self, source: str, target: str, window: str, graph_type: str) -> dict[str, Any]:
        return {"edges": [], "series": {}}

    def status(self) -> dict[str, Any] | None:
        return {"records_per_s": 1000.0, "parse_errors_per_s": 0.0, "drops_per_s": 0.0}


def browser() -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def measure(size: int, refreshes: int, jitter: float) -> dict[str, Any]:
    mesh = SyntheticMesh(size, jitter)
    app = Flask("ui-scale")
    attach_ui(app, mesh, UiSettings(refresh_seconds=2.0))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = browser()
    try:
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": INSTRUMENT + f"\nwindow.__bench.expected = {size};"}
        )
        driver.set_script_timeout(120)
        driver.get(f"http://127.0.0.1:{server.server_port}/?refresh=2&labels=rps")
        deadline = time.monotonic() + 180
        while driver.execute_script("return window.__bench.firstGraph") is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no graph of {size} nodes within 180 s")
            time.sleep(0.1)
        first_graph_ms = driver.execute_script("return window.__bench.firstGraph")
        while len(driver.execute_script("return window.__bench.requests")) < refreshes + 1:
            time.sleep(0.2)
        time.sleep(1.5)
        before = positions(driver)
        mesh.extra_node = True
        count = len(driver.execute_script("return window.__bench.requests"))
        while len(driver.execute_script("return window.__bench.requests")) < count + 2:
            time.sleep(0.2)
        time.sleep(1.0)
        after = positions(driver)
        bench = driver.execute_script("return window.__bench")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    per_refresh = []
    for request in bench["requests"][1 : refreshes + 1]:  # the first one is the first graph
        drawn = next((t for t in bench["renders"] if t >= request["answered"]), None)
        if drawn is None:
            continue
        blocked = sum(d for start, d in bench["longtasks"] if request["answered"] <= start <= drawn + 50)
        per_refresh.append(
            {
                "server_ms": request["answered"] - request["started"],
                "client_ms": drawn - request["answered"],
                "bytes": request["bytes"],
                "blocked_ms": blocked,
            }
        )
    moved = [node for node, spot in before.items() if node in after and after[node] != spot]
    return {
        "nodes": size,
        "edges": EDGES_PER_NODE * size,
        "first_graph_s": first_graph_ms / 1000,
        "server_ms": statistics.median(r["server_ms"] for r in per_refresh),
        "client_ms": statistics.median(r["client_ms"] for r in per_refresh),
        "blocked_ms": statistics.median(r["blocked_ms"] for r in per_refresh),
        "kb": statistics.median(r["bytes"] for r in per_refresh) / 1000,
        "newcomer_placed": "workload:ns-00:newcomer" in after,
        "moved": len(moved),
    }


def positions(driver: Any) -> dict[str, tuple[float, float]]:
    rows = driver.execute_script(
        "var cy = document.getElementById('graph')._cyreg.cy; return cy.nodes().map(function (n) { return [n.id(), n.position('x'), n.position('y')]; });"
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,500,2000", help="node counts, comma separated")
    parser.add_argument("--refreshes", type=int, default=6, help="refreshes measured per size")
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.03,
        help="how much every figure moves between refreshes, as a fraction (default 0.03)",
    )
    args = parser.parse_args()
    print(
        f"{'nodes':>6} {'edges':>6} {'first graph':>12} {'refresh: server':>16} {'payload':>9} {'browser':>9} "
        f"{'long tasks':>11} {'new node':>9} {'moved':>6}"
    )
    for size in (int(part) for part in args.sizes.split(",")):
        row = measure(size, args.refreshes, args.jitter)
        print(
            f"{row['nodes']:>6} {row['edges']:>6} {row['first_graph_s']:>10.2f} s {row['server_ms']:>13.0f} ms "
            f"{row['kb']:>6.0f} kB {row['client_ms']:>6.0f} ms {row['blocked_ms']:>8.0f} ms "
            f"{'placed' if row['newcomer_placed'] else 'MISSING':>9} {row['moved']:>6}",
            flush=True,
        )


if __name__ == "__main__":
    main()
