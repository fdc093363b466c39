# One-command entry points. `make serve` runs the gateway (`mt5gate serve`, on the simulator
# unless configured); `make demo` a short tour of the simulator; `make check` every check and
# test (what CI runs). Each sets up .venv itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Third-party libraries written for the official MetaTrader5 package, which the tests run
# unchanged on the simulator. They declare MetaTrader5 (Windows-only wheels) as a dependency,
# so they are installed without dependencies, with their pure dependencies pinned here.
THIRD_PARTY := pdmt5==1.2.3 pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 \
               typing-inspection==0.4.5 pymt5adapter==0.4.4

.PHONY: serve demo check lint typecheck layers test bench browser clean

# The console's browser tests drive Debian's Chromium through its ChromeDriver (no browser
# download at run time): installed from the distribution's packages when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(THIRD_PARTY)
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/mt5gate serve

demo: $(STAMP)
	$(BIN)/python -m mt5gate.demo

check: lint typecheck layers test

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --strict examples

layers: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP) browser
	$(BIN)/pytest --cov --cov-report=term

bench: $(STAMP)
	$(BIN)/python -m bench

browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
