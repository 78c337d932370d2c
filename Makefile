# Entry points for a fresh machine with Python 3.11+ and make:
#   make demo   sets up .venv and runs the main job on a small embedded default
#   make test   sets up .venv and runs the whole test suite, one worker per core (up to 4), a module per worker
#   make lint   sets up .venv and runs ruff (pyflakes and import order, settings in pyproject.toml)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint benchmark clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m experiments.demo --workdir=$(or $(WORKDIR),/tmp/visionary_demo)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 --dist loadfile --no-loadscope-reorder --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .

benchmark: $(STAMP)
	$(BIN)/python -m experiments.benchmark --suite=$(or $(SUITE),networks)

clean:
	rm -rf $(VENV) build *.egg-info
