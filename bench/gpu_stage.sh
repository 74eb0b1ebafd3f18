#!/usr/bin/env bash
# Stage what bench/gpu.py needs on the device machine (which has torch, onnx,
# onnxruntime, OpenCV, Pillow, numpy, psutil, rich, NVML but reaches no registry):
# wheels for Python 3.12 of ocrbatch itself (built from this tree: engines are found by
# entry point, so it must be installed, not just on PYTHONPATH) and of its missing
# dependencies, plus a copy of the dev corpus (../shared/corpus does not travel).
# Everything goes to .device/ (in .gitignore; the device run names it in `carry`).
# Then, with the device tool, one call (the command is printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .device && mkdir -p .device/whl .device/corpus
PY=".venv/bin/python"
$PY -m pip wheel -q --no-deps -w .device/whl .
# Same versions as this venv, where the tests pass.
pins=$($PY -m pip freeze 2>/dev/null | grep -iE '^(pydantic|pydantic_core|annotated-types|typing-inspection|pebble|rapidfuzz|sqlalchemy|alembic|mako|structlog|onnx2torch|rapidocr-onnxruntime|pypdfium2)==' || true)
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .device/whl $pins greenlet 2>&1 | grep -v 'is ignored' || true
corpus="${OCRBATCH_CORPUS:-../shared/corpus}"
cp "$corpus/manifest.csv" .device/corpus/
for src in sroie funsd oldbooks tesseract_test docbank; do cp -r "$corpus/$src" .device/corpus/; done
du -sh .device/whl .device/corpus
ls .device/whl
cat <<'CMD'

device run (carry [".device"], timeout_s 600):
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl && export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv && python3 bench/gpu.py --corpus .device/corpus --pages 2000 --json $OUT/gpu_bench.json 2>&1 | tee $OUT/gpu_bench.log
CMD
