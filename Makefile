# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup demo test lint bench bench-ech0020 clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/ech-gateway demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/throughput.py --messages 20000 --runs 3 --floor

bench-ech0020: setup
	$(BIN)/python bench/throughput.py --ech0020 --messages 20000 --floor

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
