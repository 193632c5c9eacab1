"""Start the node graph as separate processes, the way ``launch/facilitator.launch.py`` does.

The same executables (console scripts / ``lib/social_pose_diffusion``) with the
same parameter files and the same ``--ros-args`` a launch file would pass, all
read from the node specification (:mod:`social_pose_diffusion.ros.spec`). Used by
``social-pose demo``, ``social-pose evaluate --replay`` and ``social-pose
benchmark pipeline``; DDS settings come from the caller's environment.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from social_pose_diffusion.core.resources import config_path
from social_pose_diffusion.ros.spec import NODE_NAMES, PARAMS_FILES


def large_message_env(env=None):
    """``env`` with the Fast DDS profile for raw camera frames.

    ``env`` defaults to this process's, changed in place.

    Only when the user has not chosen a profile; must happen before ``rclpy.init``
    in the process it is meant for. See ``config/fastdds.xml``.
    """
    env = os.environ if env is None else env
    env.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(config_path('fastdds.xml')))
    return env


def launch_params(launch='facilitator'):
    """The installed parameter files ``launch/<launch>.launch.py`` loads, in order."""
    return [config_path(name) for name in PARAMS_FILES[launch]]


def _value(value):
    """A ``-p name:=value`` literal that ROS parses back to the same type."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_value(v) for v in value) + ']'
    if isinstance(value, str):
        return (
            json.dumps(value)
            if value == '' or ':' in value or value.lower() in ('true', 'false')
            else value
        )
    return repr(value)


def executable(name):
    """The command that starts node ``name``.

    Its console script next to this Python, else ``python -m``.
    """
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, '-m', f'social_pose_diffusion.ros.nodes.{name}']


def node_command(name, params_files, overrides=None, remaps=None):
    """The full command line for one node."""
    cmd = executable(name) + ['--ros-args']
    for path in params_files:
        cmd += ['--params-file', str(path)]
    for key, value in (overrides or {}).items():
        cmd += ['-p', f'{key}:={_value(value)}']
    for src, dst in (remaps or {}).items():
        cmd += ['-r', f'{src}:={dst}']
    return cmd


class Graph:
    """The nodes as child processes; a context manager that stops them (SIGINT, then kill).

    ``overrides`` maps a node name to ``{parameter: value}`` given with ``-p``
    after the parameter files; ``log_dir`` keeps each node's output in
    ``<node>.log`` (a temporary directory when omitted).
    """

    def __init__(
        self,
        params_files=None,
        overrides=None,
        nodes=NODE_NAMES,
        remaps=None,
        env=None,
        log_dir=None,
    ):
        self.params_files = [Path(p) for p in (params_files or launch_params())]
        for path in self.params_files:
            if not path.is_file():
                raise FileNotFoundError(f'parameter file {path} not found')
        self.nodes, self.overrides, self.remaps = (
            tuple(nodes),
            dict(overrides or {}),
            dict(remaps or {}),
        )
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault('PYTHONUNBUFFERED', '1')
        large_message_env(self.env)
        self._tmp = None if log_dir else tempfile.TemporaryDirectory(prefix='social-pose-graph-')
        self.log_dir = Path(log_dir or self._tmp.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs = {}

    def command(self, name):
        return node_command(name, self.params_files, self.overrides.get(name), self.remaps)

    def start(self):
        for name in self.nodes:
            log = open(self.log_dir / f'{name}.log', 'w')
            self.procs[name] = subprocess.Popen(
                self.command(name),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        return self

    def alive(self):
        """``{node: True while its process runs}``."""
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def check(self):
        """Raise RuntimeError naming any node whose process has ended, with the end of its log."""
        dead = [name for name, ok in self.alive().items() if not ok]
        if dead:
            raise RuntimeError(
                '; '.join(
                    f'{n} exited with {self.procs[n].returncode}:\n{self.log_tail(n)}'
                    for n in dead
                )
            )

    def log(self, name):
        path = self.log_dir / f'{name}.log'
        return path.read_text(errors='replace') if path.exists() else ''

    def log_tail(self, name, lines=15):
        return '\n'.join(self.log(name).splitlines()[-lines:])

    def stop(self, timeout=10.0):
        """SIGINT every node (a clean rclpy shutdown), kill what is left after ``timeout``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._tmp is not None and exc[0] is None:
            self._tmp.cleanup()
