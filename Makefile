# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs, then runs.

VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip
TORCH    ?= torch==2.13.0
EXTRAS   ?= dev,ros
STAMP    := $(VENV)/.robolearn-$(EXTRAS)-installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: demo test lint venv gl browser clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip "setuptools>=77" wheel

# Installs torch first (a local CPU build on these machines; an unpinned torch pulls GBs of CUDA
# wheels), then the package, then the Franka Panda model from the gym-hil wheel without its pins.
$(STAMP): pyproject.toml setup.py sim/quadrotor/_substeps.c | $(PY)
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	$(PIP) install --quiet --no-deps "gym-hil>=0.1.13"
	touch $@

venv: $(STAMP)

gl: $(STAMP)
	@bash scripts/ensure_gl.sh $(PY)

browser:
	@bash scripts/ensure_browser.sh

# Expert rollouts and a video of every task, then the main job: the default pipeline.
demo: $(STAMP) gl
	$(PY) -m robolearn demo --config configs/demo.yaml
	$(PY) -m robolearn pipeline configs/pipelines/panda_lift.yaml

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) gl browser lint
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
