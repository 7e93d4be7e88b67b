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

# Installs go through uv (pinned in constraints.txt like everything else):
# it installs the same pinned set many times faster than pip. The venv starts
# without pip (ensurepip alone takes seconds); python3's own pip puts uv in it.
# Where that fails (no pip beside python3, no uv wheel for the platform), the
# venv gets pip and pip installs everything, from the same constraints.
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check uv -c constraints.txt \
		|| { $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/python -m pip install --quiet uv -c constraints.txt; } \
		|| echo "make: uv could not be installed; installing with pip"

# Expanded when a recipe runs, after the venv exists: uv when it is there, else pip.
# uv compiles the bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set
# (CI, many containers), every process would otherwise recompile what it imports.
INSTALL = $(shell test -x $(BIN)/uv && echo "$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python" \
	|| echo "$(BIN)/python -m pip install --quiet")

$(DEMO_STAMP): constraints.txt | $(BIN)/python
	$(INSTALL) cookiecutter -c constraints.txt
	touch $@

$(STAMP): requirements-dev.txt constraints.txt | $(BIN)/python
	$(INSTALL) -r requirements-dev.txt -c constraints.txt
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
