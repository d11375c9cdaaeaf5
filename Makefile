# LLM Challenge: 30 Days - the commands of the README.
#   make lab    install, build the offline models, open JupyterLab on notebooks/
#   make test   install, build the offline models, lint, run the whole test suite
# Both are idempotent: a second run reuses the environment and the models.
# For maintainers: make lock (re-pin constraints), make new-day N=16 SLUG=x TITLE="...",
# make smoke-original (the notebooks' "original model" branches, with stand-in files as originals).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH_VERSION := 2.13.0
# On Linux a plain `pip install torch` is a several-GB CUDA build: take PyTorch's CPU index.
# A GPU user overrides it, e.g. `make install TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu126"`.
TORCH_INDEX ?= $(if $(filter Linux,$(shell uname -s)),--index-url https://download.pytorch.org/whl/cpu,)
# JupyterLab refuses to run as root without this flag.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,) --ip=127.0.0.1 --no-browser
LINTED := helpers tests scripts conftest.py data/golden/validate.py

# Debian/Ubuntu packages some days need: espeak-ng (Day 28 synthesises test speech), Chromium and
# its driver (the assistant's browser test, Days 30-31). apt, not a browser download (offline).
SYSTEM_PACKAGES := espeak-ng chromium chromium-driver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: system install models lab test lint unit notebooks sync lock new-day smoke-original bench clean-models assistant

install: $(STAMP)

system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get install -y -q $$missing >/dev/null || { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $$missing >/dev/null; }; \
	else echo "Debian packages present: $(SYSTEM_PACKAGES)"; fi

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and alone, pinned: a wheel already on this machine's disk (pip's find-links; its
	# small dependencies then come from the usual index), else the CPU build from $(or $(TORCH_INDEX),PyPI)
	( $(BIN)/python -m pip install --quiet --no-index --no-deps torch==$(TORCH_VERSION) 2>/dev/null && \
	  $(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION) ) || \
	  $(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION) $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $@

models: install
	$(BIN)/python -m helpers.prepare

lab: models
	$(BIN)/jupyter lab notebooks/ $(LAB_ARGS)

lint: install
	$(BIN)/ruff check $(LINTED)

test: models lint
	$(BIN)/python -m pytest

unit: models
	$(BIN)/python -m pytest tests

# The course assistant (Day 30) on http://127.0.0.1:8030: Ctrl-C stops it. `make assistant ASSISTANT_GUARDRAILS=1`: with Day 31's guardrails.
assistant: models
	$(BIN)/python -m helpers.webapp --host 127.0.0.1 --port 8030

notebooks: models
	$(BIN)/python scripts/nb.py run notebooks/day*.ipynb

sync: install
	$(BIN)/python -m helpers.course

# Re-pin constraints.txt to what .venv holds now (after changing pyproject.toml and installing),
# and derive constraints-colab.txt from it.
lock: install
	@{ echo "# The versions the test suite was run with (Python 3.11, CPU). \`make\` installs with"; \
	   echo "# \`-c constraints.txt\`; pyproject.toml keeps looser ranges for users elsewhere."; \
	   echo "# torch comes first, as the CPU wheel: \`pip install torch==$(TORCH_VERSION)\`. Written by \`make lock\`."; \
	   $(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' | sed 's/+cpu$$//'; \
	 } > constraints.txt.new && mv constraints.txt.new constraints.txt
	$(BIN)/python -m helpers.course --colab-constraints

new-day: install
	@test -n "$(N)" -a -n "$(SLUG)" || { echo 'usage: make new-day N=16 SLUG=hybrid_search TITLE="Hybrid search"'; exit 2; }
	$(BIN)/python scripts/new_day.py "$(N)" "$(SLUG)" "$(or $(TITLE),$(SLUG))"

smoke-original: models
	$(BIN)/python scripts/smoke_original.py

clean-models:
	rm -rf models/_offline

# Benchmarks on this machine (run it quiet): benchmarks/llm.csv and benchmarks/notebooks.csv.
bench: models
	$(BIN)/python scripts/bench.py
