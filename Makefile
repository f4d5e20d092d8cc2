# PSS rules — the two commands a newcomer runs: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
POLICIES := policies
# The studio's front end (studio/, npm + esbuild) builds into package data beside its server.
STUDIO := studio
STUDIO_STATIC := chalicelib/studio/static
STUDIO_BUNDLE := $(STUDIO_STATIC)/studio.js
STUDIO_TOKENS := $(STUDIO)/gen/pss-tokens.json
STUDIO_NODE := $(STUDIO)/node_modules/.package-lock.json
STUDIO_SOURCES := $(wildcard $(STUDIO)/src/*.js) $(STUDIO)/index.html $(STUDIO)/studio.css \
	$(STUDIO)/build.mjs

.PHONY: serve test install lint typecheck unit policy-check bundle package bench fuzz schemathesis \
	clean studio browser-deps browser-test

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

serve: bundle studio
	$(BIN)/pss serve

# npm ci installs exactly the lock file's versions from the registry (Node.js and npm are on
# the machines; apt-get brings them where they are not and we are root).
$(STUDIO_NODE): $(STUDIO)/package.json $(STUDIO)/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
	cd $(STUDIO) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Highlighting comes from the grammar's terminals (chalicelib/studio/tokens.py).
$(STUDIO_TOKENS): grammar/pss.lark chalicelib/studio/tokens.py $(STAMP)
	$(BIN)/python -m chalicelib.studio.tokens $@

$(STUDIO_BUNDLE): $(STUDIO_SOURCES) $(STUDIO_TOKENS) $(STUDIO_NODE)
	cd $(STUDIO) && node build.mjs

studio: $(STUDIO_BUNDLE)

# The browser tests drive Debian's Chromium through chromedriver; install them when missing.
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium and chromium-driver for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver >/dev/null; \
	else echo "chromium/chromedriver missing and not root: the browser tests will say so"; fi

browser-test: studio browser-deps
	$(BIN)/python -m pytest tests/studio -q

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

test: lint typecheck policy-check studio browser-deps unit

package: bundle
	AWS_DEFAULT_REGION=eu-west-2 $(BIN)/chalice package --stage prod \
		--merge-template .chalice/decisions-table.json build/package
	$(BIN)/python tools/lambda_zip.py build/package/deployment.zip

# A longer, randomised schemathesis run than the fixed one in `make test`.
schemathesis: $(STAMP)
	PSS_SCHEMATHESIS_EXAMPLES=500 $(BIN)/python -m pytest tests/e2e/test_schemathesis.py -q

bench: package
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements-peers.txt 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m benchmarks

# Longer fuzzing and differential (compiled vs the test oracle) runs than `make test` has.
fuzz: $(STAMP)
	PSS_FUZZ_EXAMPLES=20000 PSS_DIFF_EXAMPLES=5000 PSS_HTTP_FUZZ_EXAMPLES=1000 $(BIN)/python \
		-m pytest tests/dsl/test_fuzz.py tests/dsl/test_differential.py \
		tests/api/test_fuzz_http.py -q

clean:
	rm -rf $(VENV) build chalicelib/_bundle .pytest_cache .mypy_cache .ruff_cache \
		$(STUDIO_STATIC) $(STUDIO)/gen $(STUDIO)/node_modules
