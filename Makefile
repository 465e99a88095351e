# aqstream — `make help` lists the targets. The two that matter: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Spark 3.5 and Cassandra 5.0 need Java 17; a newer default JDK would break both.
JAVA_HOME := $(shell python3 -m stack.java 2>/dev/null)
export JAVA_HOME
export PATH := $(JAVA_HOME)/bin:$(PATH)
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
PYTEST := $(PY) -m pytest
JAR_INPUTS := jars/pom.xml $(wildcard jars/*/pom.xml) stack/mongo-server/pom.xml $(shell find stack/mongo-server/src -type f 2>/dev/null)

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: java
java:
	@test -n "$(JAVA_HOME)" || { python3 -m stack.java; exit 1; }

.PHONY: venv
venv: $(VENV)/.installed ## create the virtualenv with the pinned Python dependencies

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

.PHONY: jars
jars: jars/lib/.resolved ## resolve every pinned JVM artifact into jars/lib (a second run does nothing)

jars/lib/.resolved: $(JAR_INPUTS) | java
	rm -rf jars/lib  # start clean: a changed pin must not leave the old jar beside the new one
	cd jars && mvn -B -q package
	touch $@

.PHONY: up
up: venv jars prometheus-tool ## start the local stack (Kafka, MongoDB, Cassandra, Kafka Connect, Prometheus) and leave it running
	$(PY) -m stack up

.PHONY: setup
setup: up ## create topics, Mongo indexes, the Cassandra schema; register the Debezium connector
	$(PY) -m jobs.setup all
	$(PY) -m stack connector register

.PHONY: demo
demo: venv jars prometheus-tool ## set up, start the stack, replay recorded real readings through both jobs, print what landed, stop
	$(PY) -m stack.demo

.PHONY: demo-live
demo-live: venv jars prometheus-tool ## the demo with the live Open-Meteo API instead of recorded responses (needs internet)
	$(PY) -m stack.demo --live

.PHONY: serve
serve: venv ## the read API and dashboard page on http://127.0.0.1:8050 ([dashboard] in conf/pipeline.toml) over the stack's Cassandra
	$(PY) -m dashboard

.PHONY: loadtest
loadtest: venv ## 50 clients for 30 s on the dashboard's stations and trend endpoints (loopback); p95 and errors to .runs/loadtest
	$(PY) -m tests.load $(LOADTEST_ARGS)

.PHONY: down
down: ## stop the local stack
	$(PY) -m stack down

.PHONY: status
status: ## the stack's services (pid, port, health, memory), then each job's state, batches, lag (jobs.status)
	@$(PY) -m stack status; stack=$$?; \
	$(PY) -m jobs.status $(STATUS_ARGS); jobs=$$?; \
	exit $$(( jobs != 0 ? jobs : stack ))

.PHONY: history
history: venv ## start Spark's history server on the jobs' event logs (monitoring.event_log_dir), print its URL
	$(PY) -m jobs.history start

.PHONY: history-stop
history-stop: ## stop Spark's history server
	$(PY) -m jobs.history stop

.PHONY: consumer-groups
consumer-groups: venv jars ## each query's committed offsets and lag, as the pinned Kafka's kafka-consumer-groups.sh --describe shows them
	$(PY) -m jobs.consumer_groups

.PHONY: lint
lint: venv ## ruff check and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

.PHONY: format
format: venv ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

.PHONY: compose-tool
compose-tool: ## build Docker Compose (from its Go module) into .tools/bin; cached after the first build
	stack/tools/compose.sh install

.PHONY: compose-config
compose-config: compose-tool venv ## check docker-compose.yml with Docker Compose (no Docker engine needed)
	$(PY) -m stack secrets
	stack/tools/compose.sh config --quiet

.PHONY: secrets
secrets: venv ## generate the stack's secrets once (.state/secrets, `up` does it too) and write .env for compose
	$(PY) -m stack secrets

.PHONY: prometheus-tool
prometheus-tool: ## unpack Debian's prometheus and promtool (2.42) into .tools/bin, not system-wide; cached
	stack/tools/prometheus.sh install

.PHONY: prometheus-rules
prometheus-rules: prometheus-tool ## check and unit-test the alert rules (conf/prometheus) with promtool
	stack/tools/prometheus.sh promtool check rules conf/prometheus/rules.yml
	stack/tools/prometheus.sh promtool test rules conf/prometheus/rules_test.yml

.PHONY: browser-tool
browser-tool: ## unpack Debian's chromium and chromedriver (and libraries missing here) into .tools/bin, not system-wide; cached
	stack/tools/chromium.sh install

.PHONY: test-unit
test-unit: venv jars compose-tool prometheus-tool browser-tool ## unit tier: transforms, parsers, schemas (no services; Spark sessions with the pinned jars)
	$(PYTEST) -m unit tests/unit

.PHONY: test-integration
test-integration: venv jars prometheus-tool ## integration tier: real Kafka, Cassandra, MongoDB, Kafka Connect from the local stack
	$(PYTEST) -m integration tests/integration

.PHONY: test-e2e
test-e2e: venv jars prometheus-tool browser-tool ## e2e tier: the whole flow (jobs in-process, then submitted to the standalone cluster) and make demo on the local stack, exact end state, the notebook executed, the lag graph screenshot, the dashboard in Chromium and its load test
	$(PYTEST) -m e2e tests/e2e

.PHONY: test-faults
test-faults: venv jars prometheus-tool ## faults tier, short form: each job SIGKILLed mid-batch/at commit, retention data loss; exact stores
	$(PYTEST) -m faults tests/faults

.PHONY: faults
faults: venv jars prometheus-tool ## fault-injection suite, long form: every scenario, >= 5 kills per job; table in .runs/faults/
	AQSTREAM_FAULTS=long $(PYTEST) -m faults tests/faults

.PHONY: test-bench
test-bench: venv jars prometheus-tool ## bench tier: the benchmark harness on 3,000 readings, every case; asserts counts, not speed
	$(PYTEST) -m bench tests/bench

.PHONY: bench
bench: venv jars prometheus-tool ## throughput and latency of both jobs vs their ceilings and the seeds' design (JSON + PNG in .runs/bench)
	$(PY) -m tests.bench $(BENCH_ARGS)

# The same bench on a stack without authentication, with a state of its own (its Kafka storage has no SCRAM
# credentials): what authentication costs, beside `make bench`. Stop the usual stack first (same ports).
.PHONY: bench-noauth
bench-noauth: venv jars prometheus-tool ## make bench on a stack without Kafka SASL/ACLs or Cassandra logins (.runs/bench-noauth)
	AQSTREAM_AUTHENTICATION=false AQSTREAM_STATE_DIR=$(CURDIR)/.state-noauth $(PY) -m tests.bench --out .runs/bench-noauth $(BENCH_ARGS)

.PHONY: test
test: lint test-unit test-stack-tiers ## ruff, then every test tier (what .ci/run calls)

# One stack for the four tiers that need it: each tier's fixture starts only what is not running and
# stops only what it started, so starting it here once saves three starts and stops (about 1.5 min).
# A stack that was already up is left up; one started here is stopped, whatever the tiers' outcome.
.PHONY: test-stack-tiers
test-stack-tiers: venv jars prometheus-tool browser-tool
	@started=0; \
	if ! $(PY) -m stack status >/dev/null 2>&1; then $(PY) -m stack up || exit 1; started=1; fi; \
	rc=0; $(MAKE) --no-print-directory test-integration test-e2e test-faults test-bench || rc=$$?; \
	if [ $$started = 1 ]; then $(PY) -m stack down; fi; \
	exit $$rc

.PHONY: clean-state
clean-state: down ## stop the stack and delete its data (.state) and local job output (.runs)
	rm -rf .state .runs
