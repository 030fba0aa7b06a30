# Two commands set up everything on a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# swig + libpcsclite-dev build pyscard (for yubikey-manager), libtss2-dev + pkg-config build
# tpm2-pytss (the TPM slot); the rest are Qt's X/EGL libraries,
# a virtual screen for screenshots, and a D-Bus daemon for the auto-lock tests.
SYSTEM_PACKAGES := swig libpcsclite-dev libtss2-dev pkg-config gcc python3-dev libegl1 libgl1 libglib2.0-0 libfontconfig1 \
	libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
	libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 xvfb xauth \
	dbus-daemon dbus-bin
BENCH_PACKAGES := keepassxc
# a real PostgreSQL server (started by a test fixture) for the database rotator's tests, and
# swtpm, the software TPM 2.0 the TPM slot's tests start
TEST_PACKAGES := postgresql swtpm

.PHONY: run test bench soak screenshots system-deps clean package

system-deps:
	@bash packaging/install-system-deps.sh $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --config-settings editable_mode=compat -e '.[dev,tpm]'
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
	$(PY) benchmarks/bench_scan.py

soak: system-deps $(STAMP)
	@bash packaging/install-system-deps.sh $(TEST_PACKAGES)
	QT_QPA_PLATFORM=offscreen ITS_CRASH_KILLS=5000 ITS_TAMPER_FULL=1 $(PY) -m pytest -q -s -m slow
	QT_QPA_PLATFORM=offscreen ITS_FUZZ_EXAMPLES=20000 $(PY) -m pytest -q tests/adversarial/test_fuzz.py tests/adversarial/test_fuzz_importers.py
	$(PY) -m pip install -q 'atheris>=2.3'
	for target in header dotenv otpauth agent; do $(PY) tests/adversarial/atheris_targets.py $$target -runs=300000 || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

screenshots: system-deps $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m its_desktop.ui.screenshots docs/screenshots

# `make package`: the one-folder app in dist/its-desktop/ (its-desktop + its-vault), then the built
# binaries are run: --version and the headless self-test (packaging/README.md). PyInstaller needs
# binutils (objcopy, objdump); the validators check the .desktop and AppStream files.
PACKAGE_PACKAGES := binutils desktop-file-utils appstream
PACKAGE_STAMP := $(VENV)/.package-stamp
APP_ID := io.its_desktop.ITSDesktop

$(PACKAGE_STAMP): $(STAMP)
	$(PY) -m pip install -q --config-settings editable_mode=compat -e '.[package]'
	@touch $@

package: system-deps $(STAMP) $(PACKAGE_STAMP)
	@bash packaging/install-system-deps.sh $(PACKAGE_PACKAGES)
	desktop-file-validate resources/$(APP_ID).desktop
	appstreamcli validate --no-net resources/$(APP_ID).metainfo.xml
	QT_QPA_PLATFORM=offscreen $(PY) packaging/render_icons.py
	$(PY) -m PyInstaller --clean --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/its-desktop.spec
	dist/its-desktop/its-desktop --version
	dist/its-desktop/its-vault --version
	QT_QPA_PLATFORM=offscreen dist/its-desktop/its-vault self-test
	QT_QPA_PLATFORM=offscreen dist/its-desktop/its-desktop --self-test
	@du -sh dist/its-desktop
