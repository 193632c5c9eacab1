"""Shared test fixtures.

DDS confined to loopback with a private domain per test, and small simulated sessions.
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def ros_env():
    """Environment for child processes: loopback-only DDS in a fresh domain."""
    env = dict(os.environ)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 200))
    env['PYTHONUNBUFFERED'] = '1'
    return env


@pytest.fixture
def run_python(ros_env):
    """Start ``python -c CODE`` (or a module) in a child process with :func:`ros_env`.

    ``call=('test_module.function', *values)`` runs a function of a test module there
    (a driver that talks to the nodes over DDS). Killed at teardown.
    """
    procs = []

    def start(code=None, module=None, args=(), call=None):
        if call is not None:
            name, *values = call
            test_module = name.rsplit('.', 1)[0]
            code = (
                f'import sys; sys.path.insert(0, {str(HERE)!r}); import {test_module}; '
                f'{name}(*{values!r})'
            )
        cmd = [sys.executable] + (['-c', code] if code else ['-m', module]) + list(args)
        proc = subprocess.Popen(
            cmd, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
