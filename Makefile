# detak — developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench-intervals bench-quality bench-hr clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[host,dev]"
	touch $(STAMP)

demo: install
	$(BIN)/detak demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check detak tests benchmarks

bench-intervals: install
	$(BIN)/python benchmarks/intervals_ludb.py

bench-quality: install
	$(BIN)/python benchmarks/quality_ptbxl.py

clean:
	rm -rf $(VENV) build *.egg-info

bench-hr: install
	$(BIN)/python benchmarks/hr_robustness.py

# Issue 3: every tabular table and plot into docs/results/ (ARGS=--skip-s3 leaves S3 as it is).
.PHONY: bench-tabular
bench-tabular: install
	$(BIN)/python benchmarks/tabular_report.py $(ARGS)

# Issue 13 item 8: the torch checkpoints of the shipped models are not in the wheel; this is
# the separate artifact a host installed from a wheel unpacks into ~/.cache/detak.
.PHONY: weights-archive
weights-archive:
	mkdir -p dist
	tar -czf dist/detak-weights-$$($(PYTHON) -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])").tar.gz weights/*/*.pt weights/README.md
