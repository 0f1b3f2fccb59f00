# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and reuse it while setup.py and
# constraints.txt are unchanged (the stamp files below record that).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_DATA ?= sample-data
DEMO_OUT ?= demo-output
PYTEST_ARGS ?=

.PHONY: demo test lint install clean gpu-wheels gpu-check-wheels

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-runtime: setup.py constraints.txt | $(PY)
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: setup.py constraints.txt | $(PY)
	$(PIP_INSTALL) -e ".[test]"
	touch $@ $(VENV)/.installed-runtime

install: $(VENV)/.installed-runtime

demo: $(VENV)/.installed-runtime
	$(VENV)/bin/tubelets demo --data $(DEMO_DATA) --output $(DEMO_OUT)

test: $(VENV)/.installed-test
	# One torch thread per test worker: two workers on two cores, no oversubscription.
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

# The wheels models/scripts/gpu_train_detector.py needs on the lent GPU machine (python3 3.12 with torch, no
# network) that it lacks: the versions installed here, for cp312 manylinux x86_64, in a git-ignored folder that
# the device tool carries (about 4 MB; the command is in the script's docstring).
GPU_WHEELS_DIR := .gpu-wheels
GPU_WHEELS := pycocotools pydantic pydantic-core annotated-types typing-inspection typing-extensions \
	ffmpeg-python future

# $(call fetch_wheels,FOLDER,PACKAGES): the installed versions of PACKAGES, for cp312 manylinux x86_64, afresh in
# FOLDER. A canned recipe, so that each target runs its own: a target that borrowed another's recipe through
# target-specific variables would be built once per make run (`make gpu-wheels gpu-check-wheels` made one folder).
define fetch_wheels
	rm -rf $(1)
	$(PY) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d $(1) \
		$$($(PY) -c 'import sys, importlib.metadata as m; print(*(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' \
		$(2))
	du -sh $(1)
endef

gpu-wheels: $(VENV)/.installed-runtime
	$(call fetch_wheels,$(GPU_WHEELS_DIR),$(GPU_WHEELS))

# benchmarks/gpu_check.py's wheels, in their own git-ignored folder: the gpu-wheels set and Beam with those of its
# dependencies the machine lacks. Measured (an image-like site and these wheels, --no-deps): pymongo, dnspython and
# orjson are never imported on the pipeline's paths and stay out (1.5 MB), as do duckdb (24 MB; `tubelets query`
# only) and imageio-ffmpeg (65 MB; gpu_check.py reads JPEG frames where there is no ffmpeg); protobuf travels for a
# version Beam accepts. About 40 MB: with the code (11 MB), 51 MB of the 64 MiB a device call carries.
GPU_CHECK_WHEELS_DIR := .gpu-check-wheels
GPU_CHECK_PACKAGES := $(GPU_WHEELS) apache-beam beartype cryptography cffi pycparser fastavro fasteners httplib2 \
	jsonpickle objsize proto-plus protobuf pytz zstandard

gpu-check-wheels: $(VENV)/.installed-runtime
	$(call fetch_wheels,$(GPU_CHECK_WHEELS_DIR),$(GPU_CHECK_PACKAGES))

clean:
	rm -rf $(VENV) $(DEMO_DATA) $(DEMO_OUT) .pytest_cache
