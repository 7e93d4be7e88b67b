# The two commands: `make demo` (bake and run a component) and `make test`
# (the template's whole test suite). Both bootstrap .venv from python3 alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The dev tools, for the tests and lint; the demo needs only cookiecutter
# (the component's runtime arrives when the demo installs the bake).
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
OWN_CODE := hooks tooling tests scripts benchmarks local_extensions.py

.PHONY: demo test test-quick lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet cookiecutter -c constraints.txt
	touch $@

$(STAMP): requirements-dev.txt constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/python -m scripts.demo

test: $(STAMP)
	$(BIN)/python -m pytest tests

test-quick: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow"

lint: $(STAMP)
	$(BIN)/python -m ruff check $(OWN_CODE)
	$(BIN)/python -m ruff format --check $(OWN_CODE)
	$(BIN)/python -m mypy $(OWN_CODE)

format: $(STAMP)
	$(BIN)/python -m scripts.format_template

clean:
	rm -rf $(VENV) build
