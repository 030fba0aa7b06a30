# Two commands set up everything on a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# swig + libpcsclite-dev build pyscard (for yubikey-manager); the rest are Qt's X/EGL libraries,
# a virtual screen for screenshots, and a D-Bus daemon for the auto-lock tests.
SYSTEM_PACKAGES := swig libpcsclite-dev gcc python3-dev libegl1 libgl1 libglib2.0-0 libfontconfig1 \
	libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
	libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 xvfb xauth \
	dbus-daemon dbus-bin
BENCH_PACKAGES := keepassxc
# a real PostgreSQL server (started by a test fixture) for the database rotator's tests
TEST_PACKAGES := postgresql

.PHONY: run test bench soak screenshots system-deps clean

system-deps:
	@bash packaging/install-system-deps.sh $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --config-settings editable_mode=compat -e '.[dev]'
	@touch $(STAMP)

run: system-deps $(STAMP)
	$(VENV)/bin/its-desktop

test: system-deps $(STAMP)
	@bash packaging/install-system-deps.sh $(TEST_PACKAGES)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: system-deps $(STAMP)
	@bash packaging/install-system-deps.sh $(BENCH_PACKAGES)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/bench_sync.py
	$(PY) benchmarks/bench_agent.py

soak: system-deps $(STAMP)
	@bash packaging/install-system-deps.sh $(TEST_PACKAGES)
	QT_QPA_PLATFORM=offscreen ITS_CRASH_KILLS=5000 $(PY) -m pytest -q -s -m slow

clean:
	rm -rf $(VENV) build *.egg-info

screenshots: system-deps $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m its_desktop.ui.screenshots docs/screenshots
