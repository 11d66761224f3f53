# The two commands a newcomer needs: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install demo test serve bench soak lint fmt lock clean promtool chromium

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.5,<1'
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/partner-signals demo

# One pytest worker per CPU (pytest-xdist), a test file per worker at a time: most of the
# suite waits on dbt, Dagster and PostgreSQL. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= auto
test: $(STAMP) promtool chromium
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# promtool checks deploy/prometheus/ in the tests; Debian's prometheus package has it.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && apt-get install -y --no-install-recommends prometheus; \
		else \
			echo "promtool is missing: sudo apt-get install prometheus (the tests need it)" >&2; \
			exit 1; \
		fi; }

# The console's browser tests drive Debian's chromium through Playwright (Playwright's own
# browser download cannot reach its CDN here, and nothing may download at run time).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && apt-get install -y --no-install-recommends chromium; \
		else \
			echo "chromium is missing: sudo apt-get install chromium (the console tests need it)" >&2; \
			exit 1; \
		fi; }

serve: $(STAMP)
	$(BIN)/partner-signals serve

# Ingest, partner API, pushes, then the signals month (the long one); each prints its
# tables with the machine, and the first three update docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python -m bench.ingest $(BENCH_ARGS)
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.pushes
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.signals

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-resolve the pinned dependency set after editing pyproject.toml.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.5,<1'
	$(UV) pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) .data dbt_project/target .pytest_cache .mypy_cache .ruff_cache
