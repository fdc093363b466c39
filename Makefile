# One-command entry points. `make serve` runs the gateway (`mt5gate serve`, on the simulator
# unless configured); `make demo` a short tour of the simulator; `make check` every check and
# test (what CI runs); `make release` builds the wheel and sdist into dist/ and checks them
# installed in a new environment (part of `make check`). Each sets up .venv itself: `serve`
# and `demo` with the runtime only (`.[all]`: the library and its three front ends), the rest
# with the test and build tools too (`.[all,dev]`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-stamp
DEV     := $(VENV)/.dev-stamp
DIST   ?= dist
# Third-party libraries written for the official MetaTrader5 package, which the tests run
# unchanged on the simulator. They declare MetaTrader5 (Windows-only wheels) as a dependency,
# so they are installed without dependencies, with their pure dependencies pinned here.
THIRD_PARTY := pdmt5==1.2.3 pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 \
               typing-inspection==0.4.5 pymt5adapter==0.4.4

.PHONY: serve demo check lint typecheck layers test release bench browser clean

# The console's browser tests drive Debian's Chromium through its ChromeDriver (no browser
# download at run time): installed from the distribution's packages when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The runtime and, for the checks, the runtime plus the dev extra, each in one run: a fresh
# `make check` does not install the runtime first (it marks it done), and `make check` after
# `make serve` adds only what the dev extra brings. The runtime is installed by uv (from PyPI,
# into the venv): it fetches and unpacks in parallel, 11.6 s against pip's 22.8 s for the same
# `-e '.[all]'` on this project's machine (docs/install.md). The checks keep pip, which also
# installs the third-party libraries without their dependencies.
$(RUNTIME): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[all]'
	touch $@

$(DEV): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(THIRD_PARTY)
	touch $(RUNTIME) $@

serve: $(RUNTIME)
	$(BIN)/mt5gate serve

demo: $(RUNTIME)
	$(BIN)/python -m mt5gate.demo

check: lint typecheck layers release test

lint: $(DEV)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(DEV)
	$(BIN)/mypy
	$(BIN)/mypy --strict examples

layers: $(DEV)
	$(BIN)/lint-imports

# TEST_WORKERS: pytest-xdist workers (0: one process). Four by default: on this project's two
# cores the suite waits mostly on child processes and sockets. pytest took 602 s with four
# workers against 1,516 s in one process, two clones run side by side on 2026-12-07
# (docs/install.md, set-up times). The two tests that failed under that load were fixed at
# their cause (a journal opened by two processes at once; the bridge kept a stale owner
# waiting behind a hung call).
TEST_WORKERS ?= 4
test: $(DEV) browser
	$(BIN)/pytest -n $(TEST_WORKERS) --cov --cov-report=term

bench: $(DEV)
	$(BIN)/python -m bench

browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# The wheel and the sdist (`python -m build`: the sdist, then the wheel from it), `twine check`,
# then scripts/check_wheel.py: every package file is in them, and the wheel installed in a new
# environment, outside this tree, runs `mt5gate --version`, `price` and `serve`.
release: $(DEV)
	rm -rf $(DIST)
	$(BIN)/python -m build --outdir $(DIST) . >$(VENV)/build.log 2>&1 || { cat $(VENV)/build.log; exit 1; }
	$(BIN)/twine check --strict $(DIST)/*
	$(BIN)/python scripts/check_wheel.py $(DIST)

clean:
	rm -rf $(VENV) $(DIST) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage
