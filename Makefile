# headstart: `make demo` and `make test` work on a fresh machine (they create .venv when missing).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.headstart-installed

.PHONY: setup demo demo-run test lint bench clean system-deps

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/nodeps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,export,serve]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/nodeps.txt
	@$(MAKE) --no-print-directory system-deps
	@touch $@

# Optional system packages (Fashion-MNIST and the hydrogen drum kits from Debian, espeak-ng for speech
# fixtures, Chromium for report tests): installed when
# this user may run apt-get; tests that need them are skipped with a reason otherwise.
system-deps:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
		|| echo "note: could not install dataset-fashion-mnist (builtin:fashion-mnist tests will be skipped)"; \
	fi
	@if [ ! -d /usr/share/hydrogen/data/drumkits ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hydrogen-drumkits espeak-ng >/dev/null 2>&1 \
		|| echo "note: could not install hydrogen-drumkits (builtin:drums tests will be skipped)"; \
	fi
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| echo "note: could not install chromium (the headless report test will be skipped)"; \
	fi

# ELPV cells: defects can sit at the border (keep the whole cell: crop_pct=1.0) and cells have no
# up/down orientation (vertical flips are valid augmentation). Neither changes normalization.
# the demo continues by itself after an interruption (--resume: finished runs are reused, an interrupted
# one continues from its checkpoint); DEMO_OUT and DEMO_FLAGS let the tests run the same command small
DEMO_OUT ?= runs/demo
DEMO_FLAGS ?=
DEMO = $(BIN)/headstart compare builtin:elpv --backbone efficientnet_lite0 \
	--strategies linear-probe,progressive,scratch --epochs 3 --out $(DEMO_OUT) \
	--set preprocess.crop_pct=1.0 --set preprocess.vflip=true --resume $(DEMO_FLAGS)

demo: setup
	$(DEMO)

# the demo's command alone, without the set-up (tests: make demo-run VENV=... DEMO_OUT=... DEMO_FLAGS=...)
demo-run:
	$(DEMO)

# the suite runs in TEST_WORKERS pytest-xdist processes, a test file per worker (its module fixtures are built
# once); the cores are shared out between them (tests/conftest.py). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: setup lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=10 -n $(TEST_WORKERS) --dist loadfile tests \
		--doctest-modules src/headstart --ignore=src/headstart/__main__.py

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/bench_probe.py
	$(BIN)/python bench/bench_strategies.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
