# starmix: `make run` runs the default workflow, `make test` the test suite.
# Both create .venv on first use with a Python >= 3.12 (python3.12 / python3.13, or a
# pyenv-installed one), so a fresh clone needs nothing else.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= results/outlier-line

# First candidate that really runs and is >= 3.12 (pyenv shims may exist but fail).
PYTHON_CANDIDATES := $(PYTHON) python3.12 python3.13 python3 \
	$(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3) \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3)
BASE_PYTHON := $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell \
	$(p) -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && echo $(p))))

.PHONY: run test smoke lint reproduce validate bench bench-baseline bench-large bench-membership bench-survey bench-search bench-proposals bench-run bench-detection mutation mutation-sample docs clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then \
		if [ -z "$(BASE_PYTHON)" ]; then \
			echo "error: starmix needs Python >= 3.12 (PyMC 6). None of python3.12, python3.13," >&2; \
			echo "       python3 or ~/.pyenv/versions/3.1[23]* works here. Install one, or run" >&2; \
			echo "       'make PYTHON=/path/to/python3.12 ...'." >&2; \
			exit 1; \
		fi; \
		echo "creating $(VENV) with $(BASE_PYTHON)"; \
		$(BASE_PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs,jax,zeropoint,bench]'
	@# pymc-extras (the membership cross-check's marginalisation) caps pymc < 6.4; its
	@# marginalize/recover work on 6.4 (tests/models/test_pymc_extras_crosscheck.py), so it is
	@# installed without letting pip downgrade PyMC
	$(PY) -m pip install --quiet --no-deps 'pymc-extras==0.15.1'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/starmix run outlier-line --out $(OUT)

# Two pytest workers (pytest-xdist): the suite is compile- and sampling-bound, one process
# per core; TEST_WORKERS=0 runs it in one process. worksteal: a worker that runs out of
# tests takes the other's queued ones (with the default "load" one worker sat idle for the
# suite's last ~15 minutes while the other ran the queued sampling tests).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=25

smoke: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) -m smoke

# ruff, and the layer contract: data <- models <- workflows <- API, no import cycles (tests/contracts/test_layers.py)
lint: $(STAMP)
	$(VENV)/bin/ruff check starmix models data workflows validation tests benchmarks docs
	$(PY) -m pytest -q -p no:cacheprovider tests/contracts/test_layers.py

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/floor.py

# Mutation testing (mutmut, configured in pyproject.toml) of the modules the fast tests
# must guard; prints the kill rate. Not part of `make test` (it reruns tests per mutant).
mutation: $(STAMP)
	$(PY) -m pip install --quiet "mutmut>=3.8"
	$(VENV)/bin/mutmut run --max-children 2 || true
	$(PY) benchmarks/mutation_report.py

# a seeded random sample of the mutants an interrupted `make mutation` left unchecked
# (benchmarks/mutation_sample.py); the report then estimates each module's kill rate
mutation-sample: $(STAMP)
	$(PY) -m pip install --quiet "mutmut>=3.8"
	$(PY) benchmarks/mutation_sample.py $(MUTATION_SAMPLE_ARGS) || true
	$(PY) benchmarks/mutation_report.py

# W2's sampling speed against a baseline revision, in one run (benchmarks/bench_baseline.py)
bench-baseline: $(STAMP)
	$(PY) benchmarks/bench_baseline.py

# The whole pm2d workflow on 200,000 stars at 4 x 1000 draws: peak memory and posterior size.
bench-large: $(STAMP)
	$(PY) benchmarks/bench_large.py --json results/bench_large.json

# starmix against scikit-learn's GaussianMixture and HDBSCAN on simulated and real fields
# (about an hour on 2 cores; BENCH_ARGS="--cases m67 ngc188" for the real fields only).
# starmix survey's throughput: a serial loop against 1 and 2 Dask workers on 24 simulated
# CG20 clusters, per-cluster overhead, compile-cache reuse, memory, projected survey time
bench-survey: $(STAMP)
	$(PY) benchmarks/bench_survey.py $(BENCH_ARGS)

# starmix search on simulated 25 deg² skies with 20 injected clusters (BENCH_ARGS=--quick)
bench-search: $(STAMP)
	$(PY) benchmarks/bench_search.py $(BENCH_ARGS)

# the search's candidate step alone, per HDBSCAN setting, on the bench-search skies: which
# proposal finds more injected clusters, at what verification cost (a few minutes)
bench-proposals: $(STAMP)
	$(PY) benchmarks/bench_proposals.py $(BENCH_ARGS)

# the whole `starmix run cluster` per step, pmplx and joint, simulated 1k/10k/50k fields and
# the real cones, each with the Laplace and the NUTS detection (verdict table); about an hour
# (BENCH_ARGS="--sizes 1000 10000 --models pmplx --no-real" for a few minutes)
bench-run: $(STAMP)
	$(PY) benchmarks/bench_run.py $(BENCH_ARGS)

# detection rates: clusters injected into the real Blanco 1 and EDR3 fields, and the same
# regions empty (resumable; BENCH_ARGS=--quick for a 16-case subset)
bench-detection: $(STAMP)
	$(PY) benchmarks/bench_detection.py $(BENCH_ARGS)

bench-membership: $(STAMP)
	$(PY) benchmarks/bench_membership.py $(BENCH_ARGS)

# The documentation site (docs/conf.py: the docs/*.md pages and the API reference from the
# docstrings), warnings as errors, into build/docs/index.html
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs build/docs

reproduce: $(STAMP)
	$(VENV)/bin/starmix reproduce

# Full statistical validation (about 2 hours on 2 cores); VALIDATE_ARGS=--quick for a smoke run.
validate: $(STAMP)
	$(PY) -m validation $(VALIDATE_ARGS)

clean:
	rm -rf $(VENV) results .pytest_cache
