"""The node graph as data: executables, parameter files, launch arguments, remaps.

One source for ``launch/*.launch.py``, the process launcher
(:mod:`social_pose_diffusion.ros.launcher`) and the static tests, so that a
parameter name is spelled once and checked against what the nodes declare. No
ROS import: launch files import it, and CI checks it without a ROS install.
Launch arguments are strings; an empty one is "not given" and leaves the
parameter files in charge, a given one is coerced to its parameter's type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

PACKAGE = 'social_pose_diffusion'

Value = str | float | int | bool


@dataclass(frozen=True)
class NodeSpec:
    """One process of the graph; its name selects its section of the parameter files."""

    package: str
    executable: str
    name: str
    lifecycle: bool = False
    remaps: tuple[tuple[str, str], ...] = ()
    condition: str = ''  # the launch argument starting an optional node (rviz, ...)


@dataclass(frozen=True)
class Argument:
    """A launch argument and the node parameters it sets when given."""

    name: str
    default: str
    description: str
    targets: tuple[tuple[str, str], ...] = ()  # (node name, parameter name)
    kind: type = str
    choices: tuple[str, ...] = ()


NODES = (
    NodeSpec(PACKAGE, 'keypoints_node', 'keypoints_node'),
    NodeSpec(PACKAGE, 'policy_node', 'policy_node', lifecycle=True),
    NodeSpec(PACKAGE, 'retarget_node', 'retarget_node'),
    NodeSpec(PACKAGE, 'visualizer_node', 'visualizer_node'),
)
NODE_NAMES = tuple(node.name for node in NODES)
OPTIONAL_NODES = (
    NodeSpec(
        'robot_state_publisher',
        'robot_state_publisher',
        'facilitator_state_publisher',
        remaps=(('joint_states', 'facilitator/joint_states'),),
        condition='robot_state_publisher',
    ),
    NodeSpec('rviz2', 'rviz2', 'rviz2', condition='rviz'),
)

# Parameter files (config/), loaded in order; a later file and then the given arguments win.
PARAMS_FILES = {
    'facilitator': ('facilitator.yaml',),
    'replay': ('facilitator.yaml', 'replay.yaml'),
}

_SEAT = (('keypoints_node', 'facilitator_seat_u'), ('policy_node', 'facilitator_seat_u'))
_GRAPH_ARGUMENTS = (
    Argument('namespace', '', 'ROS namespace of the whole graph (two graphs side by side)'),
    Argument(
        'camera_topic',
        '',
        'equirectangular camera topic (sensor_msgs/Image; compressed '
        'transport: <camera_topic>/compressed); empty: the parameter file',
        (('keypoints_node', 'image_topic'), ('policy_node', 'image_topic')),
    ),
    Argument(
        'image_transport',
        '',
        'raw | compressed; empty: the parameter file',
        (('keypoints_node', 'image_transport'), ('policy_node', 'image_transport')),
        choices=('raw', 'compressed'),
    ),
    Argument(
        'device',
        '',
        'policy device: auto | cpu | cuda; empty: the parameter file',
        (('policy_node', 'device'),),
        choices=('auto', 'cpu', 'cuda'),
    ),
    Argument(
        'model_path',
        '',
        'policy model; empty: the parameter file (default: packaged model)',
        (('policy_node', 'model_path'),),
    ),
    Argument(
        'style',
        '',
        "facilitator style of a style-conditioned model (one of its config's styles); "
        "empty: the parameter file (default: the model's default behaviour)",
        (('policy_node', 'style'),),
    ),
    Argument(
        'facilitator_seat_u',
        '',
        "the facilitator's (robot's) azimuth in the camera frame, "
        '0..1 or -1 for unknown; empty: the parameter file',
        _SEAT,
        float,
    ),
    Argument(
        'use_sim_time',
        '',
        'follow /clock: true | false; empty: the parameter file',
        tuple((name, 'use_sim_time') for name in NODE_NAMES),
        bool,
    ),
)
ARGUMENTS = {
    'facilitator': (
        Argument(
            'params_file', '', 'parameters of every node, loaded after config/facilitator.yaml'
        ),
        *_GRAPH_ARGUMENTS,
        Argument(
            'rviz', 'true', 'start rviz2 (skipped with a warning when not installed)', kind=bool
        ),
        Argument(
            'robot_state_publisher',
            'true',
            'publish the reference body '
            '(config/facilitator.urdf; skipped with a warning when not installed)',
            kind=bool,
        ),
    ),
    'replay': (
        Argument('bag', '', 'session bag directory (social-pose simulate --out)'),
        Argument('params_file', '', 'parameters of every node, loaded after config/replay.yaml'),
        *_GRAPH_ARGUMENTS,
        Argument('rate', '1.0', 'playback rate', kind=float),
        Argument('out', 'replay_out', 'bag of the graph outputs (must not exist)'),
        Argument(
            'rviz', 'false', 'start rviz2 (skipped with a warning when not installed)', kind=bool
        ),
    ),
}
# What replay.launch.py records: the graph's outputs, relative to its namespace.
RECORDED = (
    'humans/keypoints',
    'facilitator/observed',
    'facilitator/pose',
    'facilitator/joint_states',
    'facilitator/markers',
    'diagnostics',
)
TRANSPORT_SUFFIX = {'raw': '', 'compressed': '/compressed'}


def argument(launch: str, name: str) -> Argument:
    """The argument ``name`` of launch file ``launch`` ('facilitator' or 'replay')."""
    for arg in ARGUMENTS[launch]:
        if arg.name == name:
            return arg
    raise KeyError(f'{launch}.launch.py has no argument {name!r}')


def coerce(arg: Argument, text: str) -> Value:
    """``text`` as ``arg``'s parameter type; ValueError with a one-line reason otherwise."""
    text = text.strip()
    if arg.choices and text not in arg.choices:
        raise ValueError(f'{arg.name}:={text!r} must be one of {", ".join(arg.choices)}')
    if arg.kind is bool:
        if text.lower() not in ('true', 'false'):
            raise ValueError(f'{arg.name}:={text!r} must be true or false')
        return text.lower() == 'true'
    if arg.kind in (int, float):
        try:
            value = arg.kind(text)
        except ValueError:
            raise ValueError(f'{arg.name}:={text!r} is not a {arg.kind.__name__}') from None
        if value != value or value in (float('inf'), float('-inf')):
            raise ValueError(f'{arg.name}:={text!r} is not finite')
        return value
    return text


def overrides(launch: str, given: dict[str, str]) -> dict[str, dict[str, Value]]:
    """``{node: {parameter: value}}`` for the arguments in ``given`` that are not empty."""
    out: dict[str, dict[str, Value]] = {name: {} for name in NODE_NAMES}
    for name, text in given.items():
        arg = argument(launch, name)
        if text.strip() == '' or not arg.targets:
            continue
        value = coerce(arg, text)
        for node, parameter in arg.targets:
            out[node][parameter] = value
    return out


def flag(launch: str, given: dict[str, str], name: str) -> bool:
    """A boolean argument (``rviz``, ``robot_state_publisher``), its default when empty."""
    arg = argument(launch, name)
    return bool(coerce(arg, given.get(name, '') or arg.default))


def _section_applies(key: str, namespace: str, name: str) -> bool:
    """Whether parameter-file section ``key`` names node ``name`` of a graph in ``namespace``.

    Wildcards as in ROS (``/**`` any namespaces, ``*`` one name); a key without a
    leading slash is relative to the graph's namespace, so the files written for
    one graph serve every ``namespace:=``.
    """
    path = key if key.startswith('/') else topic(namespace, key)
    pattern = re.escape(path).replace(r'/\*\*', '(/[^/]+)*').replace(r'\*', '[^/]+')
    return re.fullmatch(pattern, topic(namespace, name)) is not None


def parameters(files: list[str], namespace: str, name: str) -> dict[str, Value]:
    """Node ``name``'s parameters from parameter-file texts ``files``, a later section winning."""
    out: dict[str, Value] = {}
    for text in files:
        sections = yaml.safe_load(text) or {}
        if not isinstance(sections, dict):
            raise ValueError('a parameter file maps node names to ros__parameters')
        for key, body in sections.items():
            values = body.get('ros__parameters') if isinstance(body, dict) else None
            if not isinstance(values, dict):
                raise ValueError(f'parameter file section {key!r} has no ros__parameters mapping')
            if _section_applies(str(key), namespace, name):
                out.update(values)
    return out


def unknown(files: list[str], namespace: str, name: str, known: set[str]) -> list[str]:
    """Parameters the files set on node ``name`` that it does not declare (``known``)."""
    return sorted(set(parameters(files, namespace, name)) - known - {'use_sim_time'})


def topic(namespace: str, name: str) -> str:
    """The absolute name of the graph's relative topic ``name`` under ``namespace``."""
    return '/' + '/'.join(p for p in (namespace.strip('/'), name.strip('/')) if p)


def rviz_config(text: str, camera_topic: str, transport: str, namespace: str) -> str:
    """The rviz config ``text`` showing this graph: its camera stream and namespaced outputs."""
    config = yaml.safe_load(text)
    for display in config['Visualization Manager']['Displays']:
        if 'Topic' not in display:
            continue
        if display['Class'] == 'rviz_default_plugins/Image':
            display['Topic']['Value'] = camera_topic + TRANSPORT_SUFFIX[transport]
        else:
            display['Topic']['Value'] = topic(namespace, display['Topic']['Value'])
    for display in config['Visualization Manager']['Displays']:
        if 'Description Topic' in display:
            display['Description Topic']['Value'] = topic(
                namespace, display['Description Topic']['Value']
            )
    return yaml.safe_dump(config, sort_keys=False)
