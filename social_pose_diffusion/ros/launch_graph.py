"""Launch actions built from :mod:`social_pose_diffusion.ros.spec` (for ``launch/*.launch.py``).

The nodes are created when the launch runs, after every argument is known, so
that only the arguments a user gave override the parameter files, each coerced
to its parameter's type, and a bad argument stops the launch before any process
starts (nothing is left running). Optional packages (rviz2,
robot_state_publisher) are looked up in the ament index then and skipped with a
warning when missing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import yaml
from ament_index_python.packages import (
    PackageNotFoundError,
    get_package_prefix,
    get_package_share_directory,
)
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    GroupAction,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node, PushRosNamespace

from launch import LaunchContext, LaunchDescription
from social_pose_diffusion.msgs.topics import INFO_TOPIC
from social_pose_diffusion.ros import spec
from social_pose_diffusion.ros.launcher import large_message_env
from social_pose_diffusion.sources.bags import IMAGE, camera_topic, read_messages, topic_counts

# Seconds between the end of ``ros2 bag play`` and the shutdown: the last plans reach the recorder.
DRAIN_S = 2.0


def describe(launch: str) -> LaunchDescription:
    """The launch description of ``launch`` ('facilitator' or 'replay')."""
    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
        for a in spec.ARGUMENTS[launch]
    ]
    profile = 'FASTDDS_DEFAULT_PROFILES_FILE'  # the user's, else ours for raw camera frames
    env = SetEnvironmentVariable(profile, large_message_env(dict(os.environ))[profile])
    return LaunchDescription(declared + [env, OpaqueFunction(function=_graph, args=[launch])])


def _graph(context: LaunchContext, launch: str) -> list:
    given = {a.name: LaunchConfiguration(a.name).perform(context) for a in spec.ARGUMENTS[launch]}
    if launch == 'replay':
        given = _with_bag_defaults(given)
    share = Path(get_package_share_directory(spec.PACKAGE))
    files = [share / 'config' / name for name in spec.PARAMS_FILES[launch]]
    if given['params_file']:
        if not Path(given['params_file']).is_file():
            raise ValueError(f'params_file:={given["params_file"]} is not a file')
        files.append(Path(given['params_file']))
    namespace = given['namespace'].strip('/')
    texts = [path.read_text() for path in files]
    per_node = spec.overrides(launch, given)
    # One dict per node (launch_ros scopes it to the node wherever it runs): file sections named
    # relative to the graph still apply under namespace:=, the given arguments come last.
    try:
        params = {
            node.name: {**spec.parameters(texts, namespace, node.name), **per_node[node.name]}
            for node in spec.NODES
        }
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f'params_file:={given["params_file"]}: {exc}') from None
    actions = [PushRosNamespace(namespace)] if namespace else []
    # config/facilitator.yaml writes every parameter a node declares (test_runtime_static).
    for node in spec.NODES:
        declared = set(spec.parameters(texts[:1], namespace, node.name))
        extra = spec.unknown(texts[1:], namespace, node.name, declared)
        if extra:
            actions.append(
                LogInfo(
                    msg=f'[WARN] {node.name} declares no {", ".join(extra)}: '
                    'ignored (a misspelt name in a parameter file?)'
                )
            )
    for node in spec.NODES:
        kind = LifecycleNode if node.lifecycle else Node
        extra = {'namespace': ''} if node.lifecycle else {}
        actions.append(
            kind(
                package=node.package,
                executable=node.executable,
                name=node.name,
                parameters=[params[node.name]],
                remappings=list(node.remaps),
                output='screen',
                **extra,
            )
        )
    actions += _optional_nodes(launch, given, share, params['keypoints_node'], namespace)
    if launch == 'replay':
        actions += _replay_processes(given, params['keypoints_node'], namespace)
    return [GroupAction(actions, scoped=True)]


def _installed(package: str) -> bool:
    try:
        get_package_prefix(package)
        return True
    except PackageNotFoundError:
        return False


def _optional_nodes(launch, given, share, keypoints, namespace) -> list:
    actions = []
    sim_time = keypoints.get('use_sim_time', False)
    for node in spec.OPTIONAL_NODES:
        if not any(a.name == node.condition for a in spec.ARGUMENTS[launch]):
            continue
        if not spec.flag(launch, given, node.condition):
            continue
        if not _installed(node.package):
            actions.append(
                LogInfo(
                    msg=f'[WARN] {node.condition}:=true but package {node.package} '
                    f'is not installed: not started ({node.condition}:=false '
                    'silences this)'
                )
            )
            continue
        if node.package == 'rviz2':
            text = spec.rviz_config(
                (share / 'config' / 'facilitator.rviz').read_text(),
                keypoints['image_topic'],
                keypoints['image_transport'],
                namespace,
            )
            out = tempfile.NamedTemporaryFile('w', suffix='.rviz', delete=False)
            with out:
                out.write(text)
            extra = {'arguments': ['-d', out.name], 'parameters': [{'use_sim_time': sim_time}]}
        else:
            description = (share / 'config' / 'facilitator.urdf').read_text()
            extra = {'parameters': [{'robot_description': description, 'use_sim_time': sim_time}]}
        actions.append(
            Node(
                package=node.package,
                executable=node.executable,
                name=node.name,
                remappings=list(node.remaps),
                output='screen',
                **extra,
            )
        )
    return actions


def _with_bag_defaults(given: dict[str, str]) -> dict[str, str]:
    """Camera topic, transport and facilitator seat read from the bag where not given."""
    bag = given['bag']
    if not bag or not Path(bag).is_dir():
        raise ValueError(f'bag:={bag!r} is not a session bag directory')
    if os.path.exists(given['out']):
        raise ValueError(f'out:={given["out"]} already exists (the recorder would refuse it)')
    given = dict(given)
    recorded = camera_topic(bag)
    if recorded is None and not given['camera_topic']:
        raise ValueError(f'{bag} holds no camera stream; give camera_topic:=')
    if recorded is not None:
        raw = topic_counts(bag)[recorded][0] == IMAGE
        suffix = spec.TRANSPORT_SUFFIX['compressed']
        if not raw and not recorded.endswith(suffix):
            raise ValueError(f'{bag}: compressed camera topic {recorded} does not end in {suffix}')
        base = recorded if raw else recorded[: -len(suffix)]
        given['camera_topic'] = given['camera_topic'] or base
        given['image_transport'] = given['image_transport'] or ('raw' if raw else 'compressed')
    if not given['facilitator_seat_u']:
        # Simulated sessions say where the facilitator sits; other recordings may not.
        info = next((json.loads(m.data) for _, _, m in read_messages(bag, [INFO_TOPIC])), {})
        seat = info.get('facilitator_seat_u')
        given['facilitator_seat_u'] = '' if seat is None else repr(float(seat))
    return given


def _replay_processes(given, keypoints, namespace) -> list:
    """The recorder, the player and the end of the launch.

    The player (the camera stream only, with /clock) starts once the policy is
    active; the launch ends when the bag has played or the policy cannot start.
    """
    camera = keypoints['image_topic'] + spec.TRANSPORT_SUFFIX[keypoints['image_transport']]
    rate = spec.coerce(spec.argument('replay', 'rate'), given['rate'])
    if rate <= 0:
        raise ValueError(f'rate:={given["rate"]} must be > 0')
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '--use-sim-time', '-o', given['out']]
        + [spec.topic(namespace, t) for t in spec.RECORDED],
        name='bag_record',
        output='screen',
    )
    play = ExecuteProcess(
        cmd=[
            'ros2',
            'bag',
            'play',
            given['bag'],
            '--clock',
            '100',
            '--rate',
            repr(rate),
            '--topics',
            camera,
        ],
        name='bag_play',
        output='screen',
    )
    policy = spec.topic(namespace, 'policy_node')
    wait = ExecuteProcess(
        cmd=[sys.executable, '-m', 'social_pose_diffusion.ros.wait_active', policy],
        name='wait_policy_active',
        output='screen',
    )

    def after_wait(event, context):
        if event.returncode == 0:
            return [LogInfo(msg=f'playing {given["bag"]} ({camera})'), play]
        return [
            LogInfo(msg=f'{policy} did not become active (see its log): shutting down'),
            EmitEvent(event=Shutdown(reason='policy_node did not become active')),
        ]

    active = OnProcessExit(target_action=wait, on_exit=after_wait)
    ended = OnProcessExit(
        target_action=play,
        on_exit=[
            LogInfo(msg=f'bag {given["bag"]} ended: shutting down in {DRAIN_S:g} s'),
            TimerAction(
                period=DRAIN_S, actions=[EmitEvent(event=Shutdown(reason='the bag ended'))]
            ),
        ],
    )
    return [record, wait] + [RegisterEventHandler(h) for h in (active, ended)]
