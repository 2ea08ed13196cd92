#!/usr/bin/env bash
# Issue 26's checks on a GPU machine without network, in one command (see ../shared/gpu/README.md):
# the CUDA tests of the encode path, the encode benchmark, then the server load test when the
# server's wheels were carried (benchmarks/gpu_wheels.sh). Figures go to ${OUT:-gpu-out}/.
# Each step has its own timeout, so one that hangs does not cost the others. STEPS picks steps
# (default "tests encode serve"; "memory" streams 500,000 lines and compares with in-memory encode):
# a machine with a 10-minute limit per command runs them in two calls.
set -uo pipefail
STEPS=${STEPS:-tests encode serve}
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
python3 .gpu/site.py >/dev/null && export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
if [ -d .gpu/wheels ]; then
    python3 -m pip install -q --no-index --find-links .gpu/wheels --target /tmp/site \
        fastapi uvicorn httpx prometheus-client psutil >"$OUT/wheels.txt" 2>&1 || echo "wheels: see $OUT/wheels.txt"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
has() { [[ " $STEPS " == *" $1 "* ]]; }
if has tests; then
    timeout 180 python3 -m pytest -q -p no:cacheprovider tests/inference/test_device_pipeline.py -k gpu >"$OUT/tests.txt" 2>&1
    echo "cuda tests: exit $?"
fi
if has encode; then
    timeout 330 python3 benchmarks/encode_speed.py --device cuda --json "$OUT/encode.json" >"$OUT/encode.txt" 2>&1
    echo "encode benchmark: exit $?"
fi
if has memory; then
    timeout 300 python3 benchmarks/encode_memory.py --device cuda --lines 500000 --in-memory-texts 200000 --max-minutes 4 \
        >"$OUT/memory.txt" 2>&1
    echo "streaming memory: exit $?"
fi
if ! has serve; then
    :
elif python3 -c "import fastapi, uvicorn, httpx" 2>/dev/null; then
    timeout 200 python3 benchmarks/serve_load.py --device cuda --clients 64 --texts-per-request 16 --corpus 4096 \
        --duration 60 --rounds 3 --server-arg=--max-batch-texts=1024 --server-arg=--batch-wait-ms=2 \
        --json "$OUT/serve.json" >"$OUT/serve.txt" 2>&1
    echo "serve load: exit $?"
else
    echo "serve load: skipped (no fastapi/uvicorn/httpx: run benchmarks/gpu_wheels.sh and carry .gpu)"
fi
[ -f "$OUT/encode.txt" ] && tail -n 25 "$OUT/encode.txt"
