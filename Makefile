# LLM Challenge: 30 Days - the commands of the README.
#   make lab    install, build the offline models, open JupyterLab on notebooks/
#   make test   install, build the offline models, run the whole test suite
# Both are idempotent: a second run reuses the environment and the models.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root without this flag.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,) --ip=127.0.0.1 --no-browser

.PHONY: install models lab test unit notebooks sync clean-models

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and alone, pinned: the CPU wheel (a bare `torch` would pull GBs of CUDA)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $@

models: install
	$(BIN)/python -m helpers.prepare

lab: models
	$(BIN)/jupyter lab notebooks/ $(LAB_ARGS)

test: models
	$(BIN)/python -m pytest

unit: models
	$(BIN)/python -m pytest tests

notebooks: models
	$(BIN)/python scripts/nb.py run notebooks/day*.ipynb

sync: install
	$(BIN)/python -m helpers.course

clean-models:
	rm -rf models/_offline
