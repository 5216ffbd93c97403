# Neural Networks from Scratch: course kit.
# Every target sets up .venv on first use; `make help` lists them.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
# The assignment every target works on: ASSIGNMENT=<folder of assignments/>
# (default: the `default` of assignments/course.toml, Assignment 1).
DEFAULT_ASSIGNMENT := $(shell sed -n 's/^default *= *"\([^"]*\)".*/\1/p' assignments/course.toml)
ASSIGNMENT  ?= $(DEFAULT_ASSIGNMENT)
SUBMISSIONS ?= examples/$(ASSIGNMENT)
OUT         ?= $(if $(filter $(ASSIGNMENT),$(DEFAULT_ASSIGNMENT)),build/grades,build/$(ASSIGNMENT)/grades)
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
ONLY        ?=
FRESH       ?=
COMPARE     ?=
ARGS        ?=

export PYTHONPATH := $(CURDIR)/solutions:$(CURDIR)
export MPLBACKEND := Agg
export NNKIT_ASSIGNMENT := $(ASSIGNMENT)

.PHONY: help setup test test-fast grade similarity train bench bench-grade template check-template \
        student solution autograder clean

help:
	@echo "Every target takes ASSIGNMENT=<name> (default $(DEFAULT_ASSIGNMENT)); the course's assignments:"
	@echo "  $$(sed -n 's/^assignments *= *//p' assignments/course.toml)"
	@echo "make grade        grade SUBMISSIONS=$(SUBMISSIONS) into OUT=$(OUT) (JOBS=N, ONLY=name, FRESH=1, COMPARE=old_out)"
	@echo "make test         run the kit's own test suite (sets everything up first)"
	@echo "make similarity   which pairs of SUBMISSIONS share unusual code, into OUT=$(OUT)"
	@echo "make train        train the reference on MNIST, write plots to build/train/ (the assignment's trainer)"
	@echo "make bench        reference trainer vs scikit-learn's MLPClassifier"
	@echo "make bench-grade  seconds per submission, sandboxed vs in-process"
	@echo "make template     regenerate student_template/<assignment>/ from solutions/"
	@echo "make student | solution | autograder   build the releases into dist/"

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

# The kit's tests run once per assignment of the course (all of them, or the one given as
# ASSIGNMENT=...): the default assignment's session runs every engine test as well.
COURSE_ASSIGNMENTS := $(shell sed -n 's/^assignments *= *\[\(.*\)\]/\1/p' assignments/course.toml | tr -d '",')
TEST_ASSIGNMENTS   := $(if $(filter command line environment,$(origin ASSIGNMENT)),$(ASSIGNMENT),$(COURSE_ASSIGNMENTS))

test: setup
	@bash tests/system-packages.sh
	@status=0; for a in $(TEST_ASSIGNMENTS); do \
	    echo "== the kit's tests with assignment $$a active"; \
	    NNKIT_ASSIGNMENT=$$a $(PY) -m pytest tests --durations=12 $(ARGS) || status=1; \
	done; exit $$status

test-fast: setup
	@status=0; for a in $(TEST_ASSIGNMENTS); do \
	    NNKIT_ASSIGNMENT=$$a $(PY) -m pytest tests -m "not slow" $(ARGS) || status=1; \
	done; exit $$status

grade: setup
	$(PY) -m nnkit grade "$(SUBMISSIONS)" --out "$(OUT)" --jobs $(JOBS) $(if $(ONLY),--only "$(ONLY)") $(if $(FRESH),--fresh) \
	    $(if $(COMPARE),--compare "$(COMPARE)") $(ARGS)

similarity: setup
	$(PY) -m nnkit similarity "$(SUBMISSIONS)" --out "$(OUT)" --jobs $(JOBS) $(ARGS)

train: setup
	$(PY) -m nnkit train --out build/train $(ARGS)

bench: setup
	$(PY) -m nnkit bench $(ARGS)

bench-grade: setup
	$(PY) -m nnkit bench-grade $(ARGS)

template: setup
	$(PY) -m nnkit release template

check-template: setup
	$(PY) -m nnkit release check-template

student: setup
	$(PY) -m nnkit release student

solution: setup
	$(PY) -m nnkit release solution

autograder: setup
	$(PY) -m nnkit release autograder

clean:
	rm -rf build dist
