# make demo: a virtual environment, meshscope installed, the embedded demo running.
# make test: everything the tests need (as root on Debian also the system packages), then pytest.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# System packages the tests use for real: Prometheus and promtool, headless Chromium and its WebDriver,
# docker-compose (its `config` validates the compose file without an engine).
DEBIAN_PACKAGES := prometheus chromium chromium-driver docker-compose
PYTEST_ARGS ?=

.PHONY: demo test install install-test system-packages bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# xds-protos ships an old copy of opentelemetry/proto (no ScopeSpans) that overwrites the real one
# when pip happens to install it second; reinstalling opentelemetry-proto's own files puts them back.
OTEL_PROTO_FIX = $(BIN)/python -m pip install --quiet --force-reinstall --no-deps \
	"opentelemetry-proto==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')"

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(OTEL_PROTO_FIX)

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(OTEL_PROTO_FIX)

demo: install
	$(BIN)/meshscope demo

# Installs Debian packages only where that is possible (root on Debian); elsewhere the tests that
# need them skip and say what to install.
system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system packages present:$(DEBIAN_PACKAGES)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "not root on Debian: install$$missing yourself, or the tests that need them skip"; fi

test: install-test system-packages
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/ingest_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
