# driftgate: the two commands a newcomer needs are `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo up test test-fast lint clean

setup:
	@scripts/setup.sh

demo: setup
	$(BIN)/driftgate demo

up: setup
	$(BIN)/driftgate up

# Everything: test tools, lint, doctests, unit tests and the end-to-end tests (real vLLM).
test: setup
	@scripts/run_tests.sh

# Without the end-to-end tests (no vLLM start): a quick loop while coding.
test-fast: setup
	$(BIN)/pytest -q -ra -m "not e2e" tests

lint:
	$(BIN)/ruff check driftgate gateway drift retrain rollout tests benchmarks grafana
	$(BIN)/ruff format --check driftgate gateway drift retrain rollout tests benchmarks grafana
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench bench-quick

# Every benchmark area, full mode (long: vLLM starts, training); rewrites benchmarks/RESULTS.md.
bench: setup
	@scripts/bench_tools.sh
	$(BIN)/python -m benchmarks.suite

# Every area's smoke mode (under 5 minutes, one vLLM start); checks the documents, writes nothing.
bench-quick: setup
	@scripts/bench_tools.sh
	$(BIN)/python -m benchmarks.suite --quick
