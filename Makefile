# Run `make help` for the list. Every target creates/uses the project's own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo stop test lint unit messages clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies

demo: install ## run the whole system on the synthetic default (or DATA=... PRESET=...), no Docker
	$(BIN)/recsys up $(if $(DATA),--data $(DATA)) $(if $(PRESET),--preset $(PRESET))

stop: ## stop everything `make demo` started
	$(BIN)/recsys down

lint: install ## ruff + mypy --strict
	$(BIN)/ruff check .
	$(BIN)/mypy .

test: lint ## lint, then every test: unit, integration (real Tansu + redis-server) and end-to-end
	$(BIN)/pytest

unit: install ## unit tests only (no servers)
	$(BIN)/pytest tests/unit

messages: install ## extract the UI's and the API's words into common/locales (then translate the new es entries)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header -o common/locales/recsys.pot .
	$(BIN)/pybabel update -i common/locales/recsys.pot -d common/locales -D recsys -l es --no-fuzzy-matching \
		--ignore-obsolete

clean: ## remove the venv and generated files
	rm -rf $(VENV) .run data artifacts .pytest_cache .mypy_cache .ruff_cache
