// meshscope: keep the graph still across refreshes.
//
// Refreshes send elements without positions, so Cytoscape leaves every existing node where it is.
// Nodes that are new arrive at (0, 0); this places each next to its neighbours (to the right of its
// callers in a left-to-right layout, below them in a top-down one) on a free spot. When most of the
// graph is new (a wider namespace filter, say), it asks the server for a whole new layout instead,
// as the Re-layout button does.
(function () {
  "use strict";
  var GRAPH_ID = "graph";
  var STEP = 160; // the server's distance between layers (servicegraph/ui/hierarchy.py)
  var CELL = 45;

  function attach(cy) {
    if (cy.scratch("meshscopePositions")) return;
    var state = { pending: [], laidOut: false, lastLayout: "" };
    cy.scratch("meshscopePositions", state);

    cy.on("layoutstart", function (event) {
      var options = (event.layout && event.layout.options) || {};
      // A preset without positions is the page's idle layout, not a layout of the graph.
      if (options.name && (options.name !== "preset" || options.positions)) {
        state.laidOut = true;
        state.lastLayout = options.name;
      }
    });
    cy.on("add", "node", function (event) {
      if (state.pending.length === 0) {
        state.laidOut = false;
        setTimeout(function () { settle(cy, state); }, 0);
      }
      state.pending.push(event.target);
    });
  }

  function settle(cy, state) {
    var added = cy.collection(state.pending.filter(function (node) { return !node.removed(); }));
    state.pending = [];
    // A whole-graph layout ran with this update: it placed the new nodes already.
    if (state.laidOut || added.empty()) return;
    var total = cy.nodes().length;
    var relayout = document.getElementById("relayout");
    if (relayout && total > 2 && added.length * 2 > total) {
      relayout.click();
      return;
    }
    var vertical = state.lastLayout === "breadthfirst";
    var placed = cy.nodes().difference(added);
    var taken = {};
    placed.forEach(function (node) { taken[cellOf(node.position())] = true; });
    var waiting = added.toArray();
    // Nodes next to placed ones first; each placed node then anchors the ones after it.
    for (var pass = 0; waiting.length && pass < 4; pass++) {
      waiting = waiting.filter(function (node) {
        var spot = besideNeighbours(node, placed, vertical, pass === 3);
        if (!spot) return true;
        spot = freeSpot(spot, taken, vertical);
        node.position(spot);
        taken[cellOf(spot)] = true;
        placed = placed.union(node);
        return false;
      });
    }
  }

  function besideNeighbours(node, placed, vertical, anywhere) {
    var callers = node.incomers("node").intersection(placed);
    var callees = node.outgoers("node").intersection(placed);
    var along = vertical ? "y" : "x";
    var across = vertical ? "x" : "y";
    var spot = {};
    if (callers.nonempty()) {
      spot[along] = Math.max.apply(null, callers.map(function (n) { return n.position(along); })) + STEP;
      spot[across] = mean(callers, across);
    } else if (callees.nonempty()) {
      spot[along] = Math.min.apply(null, callees.map(function (n) { return n.position(along); })) - STEP;
      spot[across] = mean(callees, across);
    } else if (anywhere) {
      // No placed neighbour at all: below (or right of) everything, so nothing is covered.
      var box = placed.nonempty() ? placed.boundingBox() : { x1: 0, y1: 0, x2: 0, y2: 0 };
      spot[along] = vertical ? box.y1 : box.x1;
      spot[across] = (vertical ? box.x2 : box.y2) + STEP / 2;
    } else {
      return null;
    }
    return { x: spot.x, y: spot.y };
  }

  function freeSpot(spot, taken, vertical) {
    var free = { x: spot.x, y: spot.y };
    for (var tries = 0; crowded(free, taken) && tries < 500; tries++) {
      if (vertical) free.x += CELL * 1.5; else free.y += CELL * 1.5;
    }
    return free;
  }

  // Taken: a node in the spot's cell or a cell next to it (a node and its label need about that much).
  function crowded(spot, taken) {
    var column = Math.round(spot.x / CELL);
    var row = Math.round(spot.y / CELL);
    for (var dx = -1; dx <= 1; dx++) {
      for (var dy = -1; dy <= 1; dy++) {
        if (taken[(column + dx) + "," + (row + dy)]) return true;
      }
    }
    return false;
  }

  function cellOf(position) {
    return Math.round(position.x / CELL) + "," + Math.round(position.y / CELL);
  }

  function mean(nodes, axis) {
    var sum = 0;
    nodes.forEach(function (n) { sum += n.position(axis); });
    return sum / nodes.length;
  }

  // dash-cytoscape creates the Cytoscape instance after the page renders; Cytoscape hangs it on its
  // container as _cyreg.cy. Look for it until it exists (and again if the component is re-created).
  setInterval(function () {
    var container = document.getElementById(GRAPH_ID);
    if (container && container._cyreg && container._cyreg.cy) attach(container._cyreg.cy);
  }, 200);
})();
