# hadpo: two commands on a fresh machine: `make demo` and `make test`; `make` (or `make help`) lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export DS_ACCELERATOR ?= cpu
export TOKENIZERS_PARALLELISM := false

.PHONY: help setup test lint demo demo-ci lab sync clean

# The first target, so a bare `make` lists the targets: each one's `## ` comment is its line.
help: ## list the targets
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-zA-Z_-]+:[^#]*## / {printf "  make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv and install the kit (reruns only when pyproject.toml changes)

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

test: setup ## run the test suite (what CI runs, via .ci/run); PYTEST_ARGS passes options to pytest
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup ## ruff over the package, the tests and the benchmarks
	$(BIN)/ruff check hadpo tests benchmarks

demo: setup ## the whole pipeline on the shapes world: runs/demo/, reports/demo/, reports/index.html
	$(BIN)/hadpo demo -f params/demo.yaml

demo-ci: setup ## the same chain at the tests' tiny sizes (a few minutes): runs/ci/, reports/ci/
	$(BIN)/hadpo demo -f params/demo-ci.yaml

# The notebooks' relative paths (params/, runs/) are the project's: the server starts in the repository root.
lab: setup ## JupyterLab from the kit's .venv, in the repository root (open notebooks/); LAB_ARGS passes options
	$(BIN)/jupyter lab --notebook-dir=. $(LAB_ARGS)

sync: setup ## rewrite the params files and the notebooks' parameters cells from the config classes
	$(BIN)/hadpo sync

clean: ## remove .venv, runs/ and the report folders
	rm -rf $(VENV) runs reports/*/ .pytest_cache
