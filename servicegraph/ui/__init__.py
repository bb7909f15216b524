"""The live service graph's web UI: a Dash page over the graph API (see servicegraph.ui.app.attach_ui)."""
