# hadpo: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export DS_ACCELERATOR ?= cpu
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test lint demo sync clean

setup: $(STAMP)

# The stamp depends on pyproject.toml, so setup reruns only when dependencies change.
# torch is installed first and pinned: an unpinned torch resolves to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# DeepSpeed JIT-builds a communication op on its first start (~45 s); do it once here.
	$(BIN)/python -m hadpo.train.warmup
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check hadpo tests benchmarks

demo: setup
	$(BIN)/hadpo demo -f params/demo.yaml

# Rewrite the params files and the notebooks' parameters cells from the config classes.
sync: setup
	$(BIN)/hadpo sync

clean:
	rm -rf $(VENV) runs reports/*/ .pytest_cache
