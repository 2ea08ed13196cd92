#!/usr/bin/env bash
# The GPU issues' checks (fast training; fast encode/predict/serve) in ONE command for a GPU machine
# without network (see ../shared/gpu/README.md): a session gets 15 minutes of device time in all and
# at most 600 s a command, so this gets every figure in priority order within BUDGET (540) seconds.
#
#   bash benchmarks/gpu_check.sh                      # first call: figures in ${OUT:-gpu-out}/
#   STEPS="memory" bash benchmarks/gpu_check.sh        # second call, with time left: the step the first left out
#   FULL=1 STEPS="train" bash benchmarks/gpu_check.sh   # or a benchmark at its own defaults (train: 3 rounds)
#   DEVICE=cpu BUDGET=3000 bash benchmarks/gpu_check.sh  # the rehearsal on a CPU: tiny sizes, same code paths
#
# Steps, in this order (STEPS picks which; estimates on one H200, from each script's own statement or,
# where it has none, from its work against the ones that have):
#   sdpa     40 s  benchmarks/sdpa_backends.py: attention backends x dtype x shapes, plan cost and steady state
#   tests    60 s  CUDA-only tests: tests/training/test_fast_step.py and tests/inference/test_device_pipeline.py, -k gpu
#   profile  45 s  benchmarks/train_profile.py --device cuda (eager): where a training step's time goes
#   train   150 s  benchmarks/train_speed.py --device cuda --rounds 1 (3 rounds: "under 5 minutes")
#   encode  100 s  benchmarks/encode_speed_gpu.py (= encode_speed.py --device cuda) on 20,000 texts, 2 rounds
#                  (60,000 texts x 3 rounds: "under 5 min")
#   serve    60 s  benchmarks/serve_load.py, 64 clients, 30 s in 2 rounds; only when the server's wheels were
#                  carried (bash benchmarks/gpu_wheels.sh before sending the tree)
#   compile  60 s  benchmarks/train_profile.py --device cuda --compile (compiling costs "tens of seconds")
#   memory  240 s  benchmarks/encode_memory.py: 500,000 streamed lines against in-memory encode (not default)
# Default STEPS: all but memory, 515 s by these estimates. Each step has its own timeout (x5 with
# DEVICE=cpu), cut to what is left of BUDGET, and is skipped with under 20 s left; each writes
# $OUT/<step>.txt and, as it goes, $OUT/<step>.json (tests and memory: text only), so a step cut short,
# or the whole command killed, keeps what finished.
# $OUT/steps.txt lists each step's exit code and seconds. FULL=1 runs the benchmarks at their own
# (longer) defaults with 3x the timeouts, for a session with time to spare. DEVICE=cpu runs everything on a CPU at tiny sizes.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-gpu-out}
BUDGET=${BUDGET:-540}
FULL=${FULL:-0}
PY=${PYTHON:-python3}
STEPS=${STEPS:-sdpa tests profile train encode serve compile}
mkdir -p "$OUT"
if [ -f .gpu/site.py ]; then  # the built-in model and data, from the bundle (polyhead itself is not installed there)
    "$PY" .gpu/site.py >/dev/null && export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1
fi
export TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d .gpu/wheels ]; then
    wanted="fastapi uvicorn httptools uvloop httpx prometheus-client psutil"
    "$PY" -c "import pytest" 2>/dev/null || wanted="$wanted pytest"
    # shellcheck disable=SC2086
    "$PY" -m pip install -q --no-index --find-links .gpu/wheels --target /tmp/site $wanted >"$OUT/wheels.txt" 2>&1 \
        || { echo "wheels: pip failed (see $OUT/wheels.txt); unpacking every wheel into /tmp/site instead"
             "$PY" -c "import sys, zipfile; [zipfile.ZipFile(w).extractall('/tmp/site') for w in sys.argv[1:]]" .gpu/wheels/*.whl; }
fi
{
    "$PY" - <<'EOF'
import importlib.metadata as md, platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuda available {torch.cuda.is_available()}")
for name in ("transformers", "tokenizers", "accelerate", "peft", "sentence-transformers", "onnxruntime", "numpy", "fastapi", "uvicorn", "pytest"):
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} (missing)")
if torch.cuda.is_available():
    print(f"gpu {torch.cuda.get_device_name()}, capability {torch.cuda.get_device_capability()}")
EOF
    [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
} >"$OUT/env.txt" 2>&1
head -n 1 "$OUT/env.txt"

echo "# $(date -u +%FT%TZ) STEPS=\"$STEPS\" DEVICE=$DEVICE FULL=$FULL BUDGET=$BUDGET" >>"$OUT/steps.txt"
has() { [[ " $STEPS " == *" $1 "* ]]; }
# step NAME ESTIMATE_S TIMEOUT_S COMMAND...: run COMMAND into $OUT/NAME.txt under min(TIMEOUT_S, what is left of BUDGET).
step() {
    local name=$1 estimate=$2 limit=$3 left=$((BUDGET - SECONDS)) start=$SECONDS rc
    shift 3
    has "$name" || return 0
    if ((left < 20)); then
        echo "$name: skipped, ${left} s left of BUDGET=$BUDGET" | tee -a "$OUT/steps.txt"
        return 0
    fi
    [ "$DEVICE" = cpu ] && limit=$((limit * 5))  # a CPU rehearsal: slower, and inductor compiles C++ (minutes)
    [ "$FULL" = 1 ] && limit=$((limit * 3))      # the benchmarks' own defaults: about 3x the reduced work
    ((limit > left)) && limit=$left
    timeout -k 10 "$limit" "$@" >"$OUT/$name.txt" 2>&1
    rc=$?
    echo "$name: exit $rc in $((SECONDS - start)) s (timeout $limit s, estimate $estimate s)" | tee -a "$OUT/steps.txt"
}
pick() { if [ "$DEVICE" = cpu ]; then echo "$1"; elif [ "$FULL" = 1 ]; then echo "$3"; else echo "$2"; fi; }  # tiny, reduced, full

# shellcheck disable=SC2046  # the option lists below are meant to split into words
step sdpa 40 75 "$PY" benchmarks/sdpa_backends.py --device "$DEVICE" --json "$OUT/sdpa.json" \
    $(pick "--batches 4 --calls 4 --repeats 1" "" "")
if has tests && ! "$PY" -c "import pytest" 2>/dev/null; then
    echo "tests: skipped (no pytest: run benchmarks/gpu_wheels.sh and carry .gpu)" | tee -a "$OUT/steps.txt"
else
    step tests 60 150 "$PY" -m pytest -q -p no:cacheprovider tests/training/test_fast_step.py tests/inference/test_device_pipeline.py -k gpu
fi
step profile 45 90 "$PY" benchmarks/train_profile.py --device "$DEVICE" --json "$OUT/profile.json" \
    $(pick "--train-examples 64 --eval-examples 32 --steps 2 --warmup-steps 1" "" "")
step train 150 200 "$PY" benchmarks/train_speed.py --device "$DEVICE" --json "$OUT/train.json" \
    $(pick "--train-examples 48 --test-examples 32 --rounds 1 --setups full --epoch-scale 0.5" "--rounds 1" "")
step encode 100 150 "$PY" benchmarks/encode_speed_gpu.py --device "$DEVICE" --json "$OUT/encode.json" \
    $(pick "--texts 40 --repeats 1 --st-batches 32,8 --budgets 512 --paths auto,torch" "--texts 20000 --repeats 2" "")
if has serve && ! "$PY" -c "import fastapi, uvicorn, httpx" 2>/dev/null; then
    echo "serve: skipped (no fastapi/uvicorn/httpx: run benchmarks/gpu_wheels.sh and carry .gpu)" | tee -a "$OUT/steps.txt"
else
    step serve 60 90 "$PY" benchmarks/serve_load.py --device "$DEVICE" --json "$OUT/serve.json" \
        $(pick "--clients 2 --duration 2 --rounds 1 --corpus 16 --texts-per-request 2 --backend torch" \
            "--clients 64 --texts-per-request 16 --corpus 4096 --duration 30 --rounds 2 --server-arg=--max-batch-texts=1024 --server-arg=--batch-wait-ms=2" \
            "--clients 64 --texts-per-request 16 --corpus 4096 --duration 60 --rounds 3 --server-arg=--max-batch-texts=1024 --server-arg=--batch-wait-ms=2")
fi
step compile 60 120 "$PY" benchmarks/train_profile.py --device "$DEVICE" --compile --json "$OUT/compile.json" \
    $(pick "--train-examples 64 --eval-examples 32 --steps 2 --warmup-steps 1" "" "")
step memory 240 300 "$PY" benchmarks/encode_memory.py --device "$DEVICE" \
    $(pick "--lines 300 --backend torch" "--lines 500000 --in-memory-texts 200000 --max-minutes 4" \
        "--lines 1000000 --in-memory-texts 200000 --max-minutes 8")

echo "--- steps ($SECONDS s in all; figures in $OUT/)"
cat "$OUT/steps.txt" 2>/dev/null
for name in $STEPS; do
    [ -f "$OUT/$name.txt" ] && { echo "--- $name (last lines)"; tail -n 12 "$OUT/$name.txt"; }
done
exit 0
