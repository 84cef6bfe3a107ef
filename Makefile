# payportal — the two commands of the README, and a few more.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint format bench clean

$(BIN)/.installed: setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "payportal needs Python 3.11 or newer: make PYTHON=python3.12 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[testing,dev]'
	touch $@

install: $(BIN)/.installed

## make run: virtualenv, database (DATABASE_URL or embedded under var/), migrations, demo
## accounts, then the dashboard and API on http://127.0.0.1:6543 (PORT=... for another port).
## Ctrl-C stops the server and the embedded database; the next run reuses its data.
run: install
	@# pyramid still imports pkg_resources; its deprecation notice is not ours to show
	PYTHONWARNINGS="$${PYTHONWARNINGS:-ignore:pkg_resources is deprecated:UserWarning}" \
		$(BIN)/payportal-devdb serve development.ini

## make test: the whole suite on a real PostgreSQL (TEST_DATABASE_URL, else a throwaway server)
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check payportal tests migrations bench
	$(BIN)/ruff format --check payportal tests migrations bench

format: install
	$(BIN)/ruff format payportal tests migrations bench
	$(BIN)/ruff check --fix payportal tests migrations bench

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache *.egg-info
