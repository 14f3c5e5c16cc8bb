# The two commands of the README: `make demo` and `make test`.  Everything else is set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# NETNS=1 (what CI sets) requires the tests to run in a private network namespace.
NETNS  ?= auto
PYTEST_ARGS ?=

.PHONY: install demo demo-curves test test-only typecheck lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# torch first, from the CPU build on local disk, so that the project's range is already met
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

# The quick-start study (Ray stays on loopback: in a private network namespace when root).
DEMO_DB ?= demo.db
demo: install
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	@if unshare -n true 2>/dev/null; then \
	  NAS_NO_POSTGRES=1 unshare -n bash .ci/in-netns.sh $(BIN)/nas run studies/quickstart.toml --storage sqlite:///$(DEMO_DB); \
	else \
	  $(BIN)/nas run studies/quickstart.toml --storage sqlite:///$(DEMO_DB); \
	fi
	$(BIN)/nas trials quickstart --storage sqlite:///$(DEMO_DB) --top 5

# The curve-database tour without Ray: generate curves, import, list, plot.
demo-curves: install
	$(BIN)/python -m nas.demo

test: install
	@if [ "$(NETNS)" = "0" ]; then \
	  $(MAKE) --no-print-directory test-only; \
	elif unshare -n true 2>/dev/null; then \
	  unshare -n bash .ci/in-netns.sh $(MAKE) --no-print-directory test-only; \
	elif [ "$(NETNS)" = "1" ]; then \
	  echo "make test: NETNS=1 but 'unshare -n' is not permitted here" >&2; exit 2; \
	else \
	  echo "make test: no private network namespace (needs root); running on the host" >&2; \
	  $(MAKE) --no-print-directory test-only; \
	fi

test-only:
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(BIN)/python -m pytest $(PYTEST_ARGS)

typecheck: install
	$(BIN)/python -m mypy nas search_spaces predictors

lint: install
	$(BIN)/python -m ruff check nas search_spaces predictors tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build *.egg-info
