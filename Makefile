# PSS rules — the two commands a newcomer runs: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
POLICIES := policies

.PHONY: serve test install lint typecheck unit policy-check bundle package bench fuzz schemathesis clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]' 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import chalice, lark, pydantic, moto, hypothesis, pyarrow, pyspark"
	@# The Spark test needs a Java runtime (17+); a fresh CI machine gets one from apt.
	@command -v java >/dev/null || { apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null; }
	java -version 2>&1 | head -1
	touch $(STAMP)

install: $(STAMP)

bundle: $(STAMP)
	$(BIN)/pss bundle $(POLICIES)

serve: bundle
	$(BIN)/pss serve

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy chalicelib pss_dev $(wildcard app.py)

policy-check: $(STAMP)
	$(BIN)/pss check $(POLICIES)
	$(BIN)/pss test $(POLICIES) --coverage
	$(BIN)/pss fmt --check $(POLICIES)

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck policy-check unit

package: bundle
	AWS_DEFAULT_REGION=eu-west-2 $(BIN)/chalice package --stage prod \
		--merge-template .chalice/decisions-table.json build/package

# A longer, randomised schemathesis run than the fixed one in `make test`.
schemathesis: $(STAMP)
	PSS_SCHEMATHESIS_EXAMPLES=500 $(BIN)/python -m pytest tests/e2e/test_schemathesis.py -q

bench: bundle
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements-peers.txt 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m benchmarks

# Longer fuzzing and differential (compiled vs the test oracle) runs than `make test` has.
fuzz: $(STAMP)
	PSS_FUZZ_EXAMPLES=20000 PSS_DIFF_EXAMPLES=5000 PSS_HTTP_FUZZ_EXAMPLES=1000 $(BIN)/python \
		-m pytest tests/dsl/test_fuzz.py tests/dsl/test_differential.py \
		tests/api/test_fuzz_http.py -q

clean:
	rm -rf $(VENV) build chalicelib/_bundle .pytest_cache .mypy_cache .ruff_cache
