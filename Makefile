# detak — developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench-intervals bench-quality bench-hr bench-bf16 readme check-readme clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[host,dev,server]"
	touch $(STAMP)

# `make demo` needs no torch: its own venv with the kiosk install (no extras; ~730 MB, not
# the host's 7 GB), editable so it runs this checkout. `make test` keeps the host extras.
DEMO_VENV  ?= .demo-venv
DEMO_STAMP := $(DEMO_VENV)/.installed

$(DEMO_STAMP): pyproject.toml
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --disable-pip-version-check -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/detak demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check detak tests benchmarks

bench-intervals: install
	$(BIN)/python benchmarks/intervals_ludb.py --dump $(VENV)/ludb.json
	$(BIN)/python benchmarks/boundary_sd.py $(VENV)/ludb.json --worst 6

bench-bf16: install
	$(BIN)/python benchmarks/bf16_speed.py

# README tables = the blocks their benchmarks wrote into docs/results/ (benchmarks/readme_tables.py)
readme: install
	$(BIN)/python benchmarks/readme_tables.py --write

check-readme: install
	$(BIN)/python benchmarks/readme_tables.py --check

bench-quality: install
	$(BIN)/python benchmarks/quality_ptbxl.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info

bench-hr: install
	$(BIN)/python benchmarks/hr_robustness.py

# Issue 3: every tabular table and plot into docs/results/ (ARGS=--skip-s3 leaves S3 as it is).
.PHONY: bench-tabular
bench-tabular: install
	$(BIN)/python benchmarks/tabular_report.py $(ARGS)

# Issue 13: a fresh kiosk venv (`pip install .`, no extras, no torch; ~75 s here) and the
# kiosk commands on good and bad inputs: results or one-line named errors, no traceback.
# KIOSK_PYTHON must be an interpreter without torch (the machine's python3).
KIOSK_PYTHON ?= python3
KIOSK_VENV   ?= .kiosk-venv
.PHONY: kiosk-check
kiosk-check:
	$(KIOSK_PYTHON) tools/kiosk_check.py --venv $(KIOSK_VENV) --python $(KIOSK_PYTHON)

# Issue 13 item 8: the torch checkpoints of the shipped models are not in the wheel; this is
# the separate artifact a host installed from a wheel unpacks into ~/.cache/detak.
.PHONY: weights-archive
weights-archive:
	mkdir -p dist
	tar -czf dist/detak-weights-$$($(PYTHON) -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])").tar.gz weights/*/*.pt weights/README.md

# Issue 14 item 7a: every kiosk dependency (pyproject's [project] dependencies, plus the web
# stack the app adds) resolves to an aarch64 CPython 3.11 wheel for glibc 2.36 (Raspberry Pi OS
# Bookworm); exit 1 names what has none. Wheels cached in $(VENV)/aarch64-wheels (~165 MB).
AARCH64_PLANNED ?= fastapi uvicorn jinja2
.PHONY: aarch64-check
aarch64-check:
	$(PYTHON) tools/aarch64_wheels.py --dest $(VENV)/aarch64-wheels --planned $(AARCH64_PLANNED)

# Issue 14 item 6: poppler-utils (pdftotext, pdffonts, pdfinfo, pdftoppm) for the PDF-report
# tests (tests/kiosk/test_report_pdf.py); apt-get runs as root in CI.
.PHONY: pdf-tools
pdf-tools:
	command -v pdftotext >/dev/null && command -v pdffonts >/dev/null || \
	  (apt-get update -q && apt-get install -y -q poppler-utils)

# Issue 14: Debian's Chromium for the real-browser kiosk test (`pytest -m browser`, part of
# `make test`; Playwright drives /usr/bin/chromium, no browser download). Needs root (CI).
.PHONY: browser
browser:
	test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }

# The kiosk screenshots in docs/results/kiosk-screens/ (800x480, both languages): the browser
# walk with its screenshots copied there. Look at them before committing.
.PHONY: kiosk-screens
kiosk-screens: install browser
	DETAK_KIOSK_SCREENS=docs/results/kiosk-screens $(BIN)/python -m pytest -q -m browser tests/kiosk/test_browser.py
