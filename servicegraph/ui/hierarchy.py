"""The default layout, computed here rather than in the browser: callers left of callees, in layers.

Dagre in the browser takes tens of seconds for a few hundred nodes and a few thousand edges (its
crossing minimisation); this does the same kind of drawing in milliseconds for thousands:

1. each weakly connected part on its own, the largest first, stacked top to bottom;
2. cycles broken by reversing the edges a depth-first search finds going back;
3. layers by longest path from the callers that nobody calls (a callee right of all its callers);
4. order within each layer by the barycentre of the neighbours in the layers either side, sweeping
   down and up a few times, which removes most crossings;
5. isolated nodes in rows below everything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import networkx as nx

RANK_SEP = 160.0  # between layers (left to right)
NODE_SEP = 70.0  # between nodes in a layer (top to bottom)
PART_GAP = 60.0  # between connected parts
SWEEPS = 4

Position = dict[str, float]


def hierarchical_positions(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, Position]:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((source, target) for source, target in edges if source != target)
    positions: dict[str, Position] = {}
    top = 0.0
    parts = sorted(nx.weakly_connected_components(graph), key=lambda part: (-len(part), min(part)))
    isolated = [next(iter(part)) for part in parts if len(part) == 1]
    for part in parts:
        if len(part) == 1:
            continue
        layers = _ordered_layers(graph.subgraph(part))
        height = max(len(layer) for layer in layers) * NODE_SEP
        for rank, layer in enumerate(layers):
            offset = top + (height - len(layer) * NODE_SEP) / 2
            for index, node in enumerate(layer):
                positions[node] = {"x": rank * RANK_SEP, "y": offset + index * NODE_SEP}
        top += height + PART_GAP
    per_row = max(1, int(len(isolated) ** 0.5 * 2))
    for index, node in enumerate(sorted(isolated)):
        positions[node] = {"x": (index % per_row) * RANK_SEP, "y": top + (index // per_row) * NODE_SEP}
    return positions


def _ordered_layers(part: nx.DiGraph) -> list[list[str]]:
    acyclic = _without_cycles(part)
    rank: dict[str, int] = {}
    for node in nx.topological_sort(acyclic):
        rank[node] = max((rank[caller] + 1 for caller in acyclic.predecessors(node)), default=0)
    layers: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    for node in sorted(rank):
        layers[rank[node]].append(node)
    neighbours_before: dict[str, list[str]] = defaultdict(list)
    neighbours_after: dict[str, list[str]] = defaultdict(list)
    for source, target in acyclic.edges():
        neighbours_before[target].append(source)
        neighbours_after[source].append(target)
    for _ in range(SWEEPS):
        for rank_index in range(1, len(layers)):
            _sort_by_barycentre(layers[rank_index], layers[rank_index - 1], neighbours_before)
        for rank_index in range(len(layers) - 2, -1, -1):
            _sort_by_barycentre(layers[rank_index], layers[rank_index + 1], neighbours_after)
    return layers


def _sort_by_barycentre(layer: list[str], fixed: list[str], neighbours: dict[str, list[str]]) -> None:
    where = {node: index for index, node in enumerate(fixed)}
    current = {node: index for index, node in enumerate(layer)}

    def barycentre(node: str) -> float:
        # Neighbours further than one layer away do not count; a node without any keeps its place.
        places = [where[other] for other in neighbours.get(node, ()) if other in where]
        return sum(places) / len(places) if places else current[node] * len(fixed) / max(len(layer), 1)

    layer.sort(key=lambda node: (barycentre(node), current[node]))


def _without_cycles(part: nx.DiGraph) -> nx.DiGraph:
    """``part`` with each edge that closes a cycle (found going back in a depth-first search) reversed."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1: on the search path, 2: done
    roots = sorted(part, key=lambda node: (part.in_degree(node) > 0, node))
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(sorted(part.successors(root))))]
        while stack:
            node, successors = stack[-1]
            for successor in successors:
                if state.get(successor) == 1:
                    back.add((node, successor))
                elif successor not in state:
                    state[successor] = 1
                    stack.append((successor, iter(sorted(part.successors(successor)))))
                    break
            else:
                state[node] = 2
                stack.pop()
    acyclic = nx.DiGraph()
    acyclic.add_nodes_from(part)
    acyclic.add_edges_from(
        (target, source) if (source, target) in back else (source, target) for source, target in part.edges()
    )
    return acyclic
