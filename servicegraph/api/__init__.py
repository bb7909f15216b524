"""The graph's HTTP API, served on the UI's port."""
