# Two commands: `make demo` (the main job on the bundled defaults) and `make test`.
# Each bootstraps .venv from requirements.txt when it is missing or stale.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# DDS stays on this machine for the demo and the tests; robots choose their own.
LOCAL_DDS := ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-42}

.PHONY: demo test test-fast lint format venv
venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(LOCAL_DDS) $(VENV)/bin/social-pose demo --out out/demo

test: $(STAMP)
	$(LOCAL_DDS) $(PY) -m pytest -q test

# No DDS, no MediaPipe, nothing slow: the core's tests in well under 30 s.
test-fast: $(STAMP)
	$(LOCAL_DDS) $(PY) -m pytest -q -m "not ros and not mediapipe and not slow" test

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
