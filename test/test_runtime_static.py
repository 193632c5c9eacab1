"""The runtime's files without DDS traffic.

Launch and parameter files, URDF, rviz config, retargeting, conversions.
"""

import ast
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.retarget import joints as retarget
from social_pose_diffusion.ros import spec
from social_pose_diffusion.sources.sim import simulate

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'social_pose_diffusion'
NODE_CLASSES = {
    'keypoints_node': 'KeypointsNode',
    'policy_node': 'PolicyNode',
    'retarget_node': 'RetargetNode',
    'visualizer_node': 'VisualizerNode',
}


def entry_points():
    tree = ast.parse((ROOT / 'setup.py').read_text())
    scripts = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and ' = ' in n.value
    ]
    return {s.split(' = ')[0].strip() for s in scripts}


@pytest.fixture(scope='module')
def declared(tmp_path_factory):
    """Parameters every node declares.

    Read from real node instances in a child process (loopback DDS).
    """
    import os
    import random
    import subprocess
    import sys

    env = dict(
        os.environ,
        ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
        ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 200)),
    )
    code = (
        'import json, rclpy, importlib\n'
        'rclpy.init()\nout = {}\n'
        f'for mod, cls in {NODE_CLASSES!r}.items():\n'
        '    node = getattr(importlib.import_module('
        '"social_pose_diffusion.ros.nodes." + mod), cls)()\n'
        '    out[node.get_name()] = node.list_parameters([], 0).names\n'
        '    getattr(node, "shutdown", lambda: None)()\n'
        '    node.destroy_node()\n'
        'print("DECLARED" + json.dumps(out))\n'
        'rclpy.shutdown()\n'
    )
    run = subprocess.run(
        [sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=180
    )
    line = [x for x in run.stdout.splitlines() if x.startswith('DECLARED')]
    assert line, run.stdout + run.stderr
    return {k: set(v) for k, v in json.loads(line[0][len('DECLARED') :]).items()}


def test_spec_nodes_are_entry_points_and_launch_arguments_set_declared_parameters(declared):
    assert set(spec.NODE_NAMES) == set(NODE_CLASSES)
    scripts = entry_points()
    for node in spec.NODES:
        assert node.package == PACKAGE and node.executable in scripts, node
        assert node.name == node.executable, 'the name selects its section of parameter files'
    for launch, arguments in spec.ARGUMENTS.items():
        assert (ROOT / 'launch' / f'{launch}.launch.py').is_file()
        for name in spec.PARAMS_FILES[launch]:
            assert (ROOT / 'config' / name).is_file(), name
        names = [a.name for a in arguments]
        assert len(names) == len(set(names)), f'{launch}: an argument is declared twice'
        for arg in arguments:
            for node, parameter in arg.targets:
                assert parameter in declared[node], (
                    f'{launch}.launch.py {arg.name} sets {parameter!r}, undeclared by {node}'
                )
    # The replay path sets the seat and the camera of the node that splits off the facilitator.
    replay = {(n, p) for a in spec.ARGUMENTS['replay'] for n, p in a.targets}
    assert {
        ('keypoints_node', 'facilitator_seat_u'),
        ('keypoints_node', 'image_topic'),
        ('keypoints_node', 'image_transport'),
    } <= replay


def _strings(tree, call):
    """String constants passed to calls of ``call`` and used as ``given[...]`` keys."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and getattr(n.func, 'id', None) == call:
            out |= {a.value for a in n.args if isinstance(a, ast.Constant)}
        if (
            isinstance(n, ast.Subscript)
            and getattr(n.value, 'id', None) == 'given'
            and isinstance(n.slice, ast.Constant)
        ):
            out.add(n.slice.value)
    return out


@pytest.mark.parametrize('launch', ['facilitator', 'replay'])
def test_launch_files_take_everything_from_the_spec(launch):
    tree = ast.parse((ROOT / 'launch' / f'{launch}.launch.py').read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [(c.func.id, [a.value for a in c.args]) for c in calls] == [('describe', [launch])]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Dict)], 'parameters: the spec'
    # Every argument the launch actions read by name is one the spec declares.
    builder = ast.parse((ROOT / PACKAGE / 'ros' / 'launch_graph.py').read_text())
    known = {a.name for arguments in spec.ARGUMENTS.values() for a in arguments}
    assert _strings(builder, 'LaunchConfiguration') <= known


def test_arguments_override_only_when_given_and_take_their_parameter_types():
    assert spec.overrides('facilitator', {a.name: '' for a in spec.ARGUMENTS['facilitator']}) == {
        name: {} for name in spec.NODE_NAMES
    }, 'empty arguments leave params_file in charge'
    seat = spec.overrides(
        'replay',
        {
            'facilitator_seat_u': '0',
            'camera_topic': '/theta/image',
            'image_transport': 'raw',
            'use_sim_time': 'True',
        },
    )
    assert seat['keypoints_node']['facilitator_seat_u'] == 0.0
    assert type(seat['keypoints_node']['facilitator_seat_u']) is float
    assert seat['keypoints_node']['image_topic'] == '/theta/image'
    assert seat['policy_node']['image_topic'] == '/theta/image'
    assert seat['keypoints_node']['image_transport'] == 'raw'
    assert all(seat[n]['use_sim_time'] is True for n in spec.NODE_NAMES)
    assert spec.overrides('facilitator', {'device': 'cpu'})['policy_node'] == {'device': 'cpu'}
    for name, bad in (
        ('facilitator_seat_u', 'left'),
        ('facilitator_seat_u', 'nan'),
        ('image_transport', 'theora'),
        ('use_sim_time', 'yes'),
        ('device', 'tpu'),
    ):
        with pytest.raises(ValueError, match=name):
            spec.overrides('replay', {name: bad})
    with pytest.raises(KeyError, match='bag'):
        spec.overrides('facilitator', {'bag': '/tmp/x'})
    assert spec.flag('facilitator', {'rviz': ''}, 'rviz') is True
    assert spec.flag('replay', {'rviz': ''}, 'rviz') is False
    assert spec.flag('facilitator', {'rviz': 'false'}, 'rviz') is False


def test_parameter_file_sections_apply_in_order_and_under_any_graph_namespace():
    texts = [(ROOT / 'config' / name).read_text() for name in spec.PARAMS_FILES['replay']]
    texts.append(
        yaml.safe_dump(
            {
                '/keypoints_node': {'ros__parameters': {'max_people': 3}},
                '/**/keypoints_node': {'ros__parameters': {'backend': 'x'}},
            }
        )
    )
    for namespace in ('', 'left', '/a/b/'):
        keypoints = spec.parameters(texts, namespace, 'keypoints_node')
        assert keypoints['image_transport'] == 'compressed', 'replay.yaml comes after'
        assert keypoints['use_sim_time'] is True and keypoints['backend'] == 'x'
        assert keypoints['max_people'] == (3 if namespace == '' else 16), 'absolute names'
        assert keypoints['image_topic'] == '/camera/image_raw'
        policy = spec.parameters(texts, namespace, 'policy_node')
        assert policy['init_from_observed'] is True and 'max_people' not in policy


def test_parameter_files_with_unknown_names_or_no_sections_are_reported():
    shipped = [(ROOT / 'config' / name).read_text() for name in spec.PARAMS_FILES['replay']]
    declared = set(spec.parameters(shipped[:1], '', 'keypoints_node'))
    assert spec.unknown(shipped[1:], '', 'keypoints_node', declared) == []
    typo = yaml.safe_dump({'keypoints_node': {'ros__parameters': {'facilitator_seat': 0.5}}})
    assert spec.unknown([typo], 'left', 'keypoints_node', declared) == ['facilitator_seat']
    for bad in ('- a list', 'keypoints_node: 3', 'keypoints_node: {max_people: 3}'):
        with pytest.raises(ValueError):
            spec.parameters([bad], '', 'keypoints_node')


def test_rviz_config_follows_the_camera_topic_and_the_namespace():
    text = (ROOT / 'config' / 'facilitator.rviz').read_text()
    config = yaml.safe_load(spec.rviz_config(text, '/theta/image', 'compressed', 'left'))
    displays = config['Visualization Manager']['Displays']
    topics = {d['Class']: d['Topic']['Value'] for d in displays if 'Topic' in d}
    assert topics['rviz_default_plugins/Image'] == '/theta/image/compressed'
    assert topics['rviz_default_plugins/MarkerArray'] == '/left/facilitator/markers'
    assert topics['rviz_default_plugins/PointCloud2'] == '/left/humans/keypoints'
    model = next(d for d in displays if d['Class'] == 'rviz_default_plugins/RobotModel')
    assert model['Description Topic']['Value'] == '/left/robot_description'
    plain = yaml.safe_load(spec.rviz_config(text, '/camera/image_raw', 'raw', ''))
    assert plain == yaml.safe_load(text), 'the shipped config is the one for the default graph'
    assert spec.topic('/a/', 'facilitator/pose') == '/a/facilitator/pose'
    assert spec.topic('', '/diagnostics') == '/diagnostics'


def test_package_xml_declares_every_ros_package_the_runtime_imports_or_runs():
    depends = {e.text for e in ET.parse(ROOT / 'package.xml').getroot().iter('exec_depend')}
    imported = set()
    for path in [*(ROOT / PACKAGE / 'ros').rglob('*.py'), *(ROOT / 'launch').glob('*.py')]:
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.ImportFrom) and n.level == 0:
                imported.add(n.module.split('.')[0])
            elif isinstance(n, ast.Import):
                imported |= {a.name.split('.')[0] for a in n.names}
    ros = {
        m
        for m in imported
        if m.endswith(('_msgs', '_interfaces'))
        or m in ('rclpy', 'launch', 'launch_ros', 'ament_index_python')
    }
    assert {
        'rclpy',
        'launch',
        'launch_ros',
        'rosgraph_msgs',
        'builtin_interfaces',
        'rcl_interfaces',
        'lifecycle_msgs',
    } <= ros, 'the scan sees the runtime imports'
    # ros2 launch, and ros2 bag play/record of the mcap session bags in replay.launch.py.
    runs = {'ros2launch', 'rosbag2', 'rosbag2_storage_mcap'}
    runs |= {n.package for n in spec.OPTIONAL_NODES}
    assert ros | runs <= depends, f'package.xml lacks {sorted((ros | runs) - depends)}'


def test_every_parameter_file_key_is_declared(declared):
    for path in (ROOT / 'config').glob('*.yaml'):
        for section, body in yaml.safe_load(path.read_text()).items():
            names = declared if section == '/**' else {section: declared[section]}
            for node, params in names.items():
                assert set(body['ros__parameters']) <= params, (path.name, node)
    # And every declared parameter has its default written in the shared file.
    shared = yaml.safe_load((ROOT / 'config' / 'facilitator.yaml').read_text())
    for node, params in declared.items():
        assert set(shared[node]['ros__parameters']) == params - {
            'use_sim_time',
            'start_type_description_service',
        }


def test_urdf_matches_the_retargeting_joints_and_limits():
    robot = ET.parse(ROOT / 'config' / 'facilitator.urdf').getroot()
    joints = {j.get('name'): j for j in robot.iter('joint') if j.get('type') == 'revolute'}
    assert set(joints) == set(retarget.JOINT_NAMES)
    links = {link.get('name') for link in robot.iter('link')}
    for name, (lo, hi) in retarget.LIMITS.items():
        limit = joints[name].find('limit')
        assert float(limit.get('lower')) == pytest.approx(lo) and float(
            limit.get('upper')
        ) == pytest.approx(hi)
        assert (
            joints[name].find('parent').get('link') in links
            and joints[name].find('child').get('link') in links
        )
    assert joints['left_shoulder'].find('axis').get('xyz') == '1 0 0'
    assert joints['right_shoulder'].find('axis').get('xyz') == '-1 0 0'


def test_rviz_config_shows_the_published_topics():
    config = yaml.safe_load((ROOT / 'config' / 'facilitator.rviz').read_text())
    manager = config['Visualization Manager']
    topics = {d['Topic']['Value'] for d in manager['Displays'] if 'Topic' in d}
    assert {'/facilitator/markers', '/humans/keypoints', '/camera/image_raw'} <= topics
    assert manager['Global Options']['Fixed Frame'] == 'camera'
    assert any(d['Class'] == 'rviz_default_plugins/RobotModel' for d in manager['Displays'])


def test_retargeting_follows_the_simulated_facilitator_within_limits():
    session = simulate('teacher', 4, 20.0, 30.0, 1)
    angles = np.array([retarget.retarget(p) for p in session.facilitator])
    lo = np.array([retarget.LIMITS[n][0] for n in retarget.JOINT_NAMES])
    hi = np.array([retarget.LIMITS[n][1] for n in retarget.JOINT_NAMES])
    assert np.all(angles >= lo) and np.all(angles <= hi)
    # The head turns both ways toward speakers, an invitation lifts an arm well away from rest.
    yaw = angles[:, 0]
    assert yaw.min() < -0.2 and yaw.max() > 0.2
    shoulders = angles[:, 2:4]
    assert shoulders.max() > shoulders.min() + 0.5


def test_retargeting_is_mirror_symmetric_and_rejects_bad_poses():
    pose = simulate('musician', 3, 2.0, 30.0, 2).facilitator[0][:, :2].copy()
    centre = pose[5:7, 0].mean()
    mirrored = pose.copy()
    mirrored[:, 0] = 2 * centre - pose[:, 0]
    swap = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]
    mirrored = mirrored[swap]
    a, b = retarget.joint_angles(pose), retarget.joint_angles(mirrored)
    assert a['head_yaw'] == pytest.approx(-b['head_yaw'], abs=1e-6)
    assert a['left_shoulder'] == pytest.approx(b['right_shoulder'], abs=1e-6)
    assert a['left_elbow'] == pytest.approx(b['right_elbow'], abs=1e-6)
    bad = pose.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError):
        retarget.joint_angles(bad)
    clamped, clipped = retarget.clamp(
        {
            'head_yaw': 5.0,
            'head_pitch': 0.0,
            'left_shoulder': 0.0,
            'right_shoulder': 0.0,
            'left_elbow': 0.0,
            'right_elbow': -9.0,
        }
    )
    assert clamped['head_yaw'] == retarget.LIMITS['head_yaw'][1] and set(clipped) == {
        'head_yaw',
        'right_elbow',
    }
    slow = retarget.limit_velocity({'head_yaw': 0.0}, {'head_yaw': 1.0}, max_velocity=2.0, dt=0.1)
    assert slow['head_yaw'] == pytest.approx(0.2)


def test_facilitator_cloud_keeps_the_group_layout_plus_spread_and_age():

    from social_pose_diffusion.msgs.keypoint_cloud import (
        cloud_field,
        cloud_to_frame,
        facilitator_cloud,
        frame_to_cloud,
        stamp_ns,
    )
    from social_pose_diffusion.ros.messages import RCLPY

    pose = simulate('musician', 3, 1.0, 30.0, 2).facilitator[0]
    spread = np.linspace(0, 0.01, len(pose))
    header = RCLPY.header(1_700_000_000_123_456_789)
    msg = facilitator_cloud(pose[:, :2], spread, 0.125, header, RCLPY)
    frame = cloud_to_frame(msg)
    assert list(frame.ids) == [0] and np.allclose(
        frame.keypoints[0, :, :2], pose[:, :2], atol=1e-6
    )
    assert np.allclose(cloud_field(msg, 'spread'), spread, atol=1e-7)
    assert np.allclose(cloud_field(msg, 'obs_age'), 0.125)
    assert stamp_ns(msg) == 1_700_000_000_123_456_789
    assert cloud_field(frame_to_cloud(GroupFrame(0), header, RCLPY), 'spread') is None
    msg.is_bigendian = True
    with pytest.raises(ValueError, match='big-endian'):
        cloud_to_frame(msg)


def test_latest_slot_keeps_only_the_newest_and_counts_drops():
    from social_pose_diffusion.ros.common import LatestSlot

    slot = LatestSlot()
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.take(0) == 3 and slot.take(0) is None
    slot.close()
    assert slot.take(5.0) is None


def test_graph_starts_nodes_with_the_launch_parameter_files():
    from social_pose_diffusion.ros.launcher import Graph, launch_params, node_command

    graph = Graph(
        overrides={
            'policy_node': {
                'device': 'cpu',
                'model_path': '',
                'samples': 2,
                'reanchor': 0.5,
                'autostart': True,
            }
        }
    )
    assert graph.nodes == spec.NODE_NAMES
    cmd = graph.command('policy_node')
    args = cmd[cmd.index('--ros-args') + 1 :]
    assert args[:2] == ['--params-file', str(ROOT / 'config' / 'facilitator.yaml')]
    assert {
        'device:=cpu',
        'model_path:=""',
        'samples:=2',
        'reanchor:=0.5',
        'autostart:=true',
    } <= set(cmd)
    # The executable is the node's own (console script or module), the overrides only its own.
    assert cmd[: cmd.index('--ros-args')] in (
        [str(Path(sys.executable).with_name('policy_node'))],
        [sys.executable, '-m', 'social_pose_diffusion.ros.nodes.policy_node'],
    )
    assert not {'device:=cpu', 'samples:=2'} & set(graph.command('retarget_node'))
    assert [p.name for p in launch_params('replay')] == ['facilitator.yaml', 'replay.yaml']
    with pytest.raises(FileNotFoundError):
        Graph(params_files=['/nonexistent.yaml'])
    assert node_command('retarget_node', [], remaps={'/a': '/b'})[-2:] == ['-r', '/a:=/b']
