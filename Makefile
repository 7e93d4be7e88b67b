# The two commands: `make demo` (bake and run a component) and `make test`
# (the template's whole test suite). Both bootstrap .venv from python3 alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick lint format clean

$(STAMP): requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest tests

test-quick: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow"

lint: $(STAMP)
	$(BIN)/python -m ruff check hooks tests scripts benchmarks local_extensions.py
	$(BIN)/python -m ruff format --check hooks tests scripts benchmarks local_extensions.py
	$(BIN)/python -m mypy hooks tests scripts benchmarks local_extensions.py

format: $(STAMP)
	$(BIN)/python scripts/format_template.py

clean:
	rm -rf $(VENV) build
