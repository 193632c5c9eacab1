"""The runtime's files without DDS traffic: launch and parameter files, URDF, rviz config, retargeting, conversions."""
import ast
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from social_pose_diffusion.retarget import joints as retarget
from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.sources.sim import simulate

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'social_pose_diffusion'
NODE_CLASSES = {'keypoints_node': 'KeypointsNode', 'policy_node': 'PolicyNode', 'retarget_node': 'RetargetNode',
                'visualizer_node': 'VisualizerNode'}


def entry_points():
    tree = ast.parse((ROOT / 'setup.py').read_text())
    scripts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and ' = ' in n.value]
    return {s.split(' = ')[0].strip() for s in scripts}


def launch_nodes(path):
    """``[(package, executable, name, config files, parameter dict keys)]`` of every Node/LifecycleNode call."""
    tree = ast.parse(path.read_text())
    configs = {n.args[-1].value for n in ast.walk(tree) if isinstance(n, ast.Call) and len(n.args) >= 2
               and isinstance(n.args[-1], ast.Constant) and isinstance(n.args[-1].value, str)
               and any(isinstance(a, ast.Constant) and a.value == 'config' for a in n.args)}
    constants = {t.id: a.value.value for a in tree.body if isinstance(a, ast.Assign)
                 and isinstance(a.value, ast.Constant) for t in a.targets if isinstance(t, ast.Name)}

    def value(node):
        return constants[node.id] if isinstance(node, ast.Name) else node.value

    nodes = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', None) in ('Node', 'LifecycleNode'):
            kw = {k.arg: k.value for k in call.keywords}
            keys = {k.value for d in ast.walk(kw['parameters']) if isinstance(d, ast.Dict) for k in d.keys
                    if isinstance(k, ast.Constant)} if 'parameters' in kw else set()
            nodes.append((value(kw['package']), value(kw['executable']),
                          value(kw['name']) if 'name' in kw else None, keys))
    return nodes, configs


@pytest.fixture(scope='module')
def declared(tmp_path_factory):
    """Parameters every node declares, read from real node instances in a child process (loopback DDS)."""
    import os
    import random
    import subprocess
    import sys
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 200)))
    code = ('import json, rclpy, importlib\n'
            'rclpy.init()\nout = {}\n'
            f'for mod, cls in {NODE_CLASSES!r}.items():\n'
            '    node = getattr(importlib.import_module("social_pose_diffusion.ros.nodes." + mod), cls)()\n'
            '    out[node.get_name()] = node.list_parameters([], 0).names\n'
            '    getattr(node, "shutdown", lambda: None)()\n'
            '    node.destroy_node()\n'
            'print("DECLARED" + json.dumps(out))\n'
            'rclpy.shutdown()\n')
    run = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=180)
    line = [x for x in run.stdout.splitlines() if x.startswith('DECLARED')]
    assert line, run.stdout + run.stderr
    return {k: set(v) for k, v in json.loads(line[0][len('DECLARED'):]).items()}


@pytest.mark.parametrize('launch', ['facilitator.launch.py', 'replay.launch.py'])
def test_launch_files_start_entry_points_with_existing_declared_parameters(launch, declared):
    nodes, configs = launch_nodes(ROOT / 'launch' / launch)
    ours = [n for n in nodes if n[0] == PACKAGE]
    assert {n[1] for n in ours} == set(NODE_CLASSES)
    scripts = entry_points()
    assert configs, 'the launch file names its parameter files'
    for config in configs:
        assert (ROOT / 'config' / config).is_file(), config
    yaml_files = [ROOT / 'config' / c for c in configs if c.endswith('.yaml')]
    for package, executable, name, keys in ours:
        assert executable in scripts, f'{executable} is not a console_scripts entry point'
        assert name == executable, 'the node name selects its section of the parameter file'
        assert keys <= declared[name], f'{launch} sets undeclared {keys - declared[name]} on {name}'
        for path in yaml_files:
            params = yaml.safe_load(path.read_text())
            for section in (name, '/**'):
                extra = set(params.get(section, {}).get('ros__parameters', {})) - declared[name]
                assert not extra, f'{path.name} sets {extra} that {name} does not declare'


def test_every_parameter_file_key_is_declared(declared):
    for path in (ROOT / 'config').glob('*.yaml'):
        for section, body in yaml.safe_load(path.read_text()).items():
            names = declared if section == '/**' else {section: declared[section]}
            for node, params in names.items():
                assert set(body['ros__parameters']) <= params, (path.name, node)
    # And every declared parameter has its default written in the shared file.
    shared = yaml.safe_load((ROOT / 'config' / 'facilitator.yaml').read_text())
    for node, params in declared.items():
        assert set(shared[node]['ros__parameters']) == params - {'use_sim_time', 'start_type_description_service'}


def test_urdf_matches_the_retargeting_joints_and_limits():
    robot = ET.parse(ROOT / 'config' / 'facilitator.urdf').getroot()
    joints = {j.get('name'): j for j in robot.iter('joint') if j.get('type') == 'revolute'}
    assert set(joints) == set(retarget.JOINT_NAMES)
    links = {link.get('name') for link in robot.iter('link')}
    for name, (lo, hi) in retarget.LIMITS.items():
        limit = joints[name].find('limit')
        assert float(limit.get('lower')) == pytest.approx(lo) and float(limit.get('upper')) == pytest.approx(hi)
        assert joints[name].find('parent').get('link') in links and joints[name].find('child').get('link') in links
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
    clamped, clipped = retarget.clamp({'head_yaw': 5.0, 'head_pitch': 0.0, 'left_shoulder': 0.0,
                                       'right_shoulder': 0.0, 'left_elbow': 0.0, 'right_elbow': -9.0})
    assert clamped['head_yaw'] == retarget.LIMITS['head_yaw'][1] and set(clipped) == {'head_yaw', 'right_elbow'}
    slow = retarget.limit_velocity({'head_yaw': 0.0}, {'head_yaw': 1.0}, max_velocity=2.0, dt=0.1)
    assert slow['head_yaw'] == pytest.approx(0.2)


def test_facilitator_cloud_keeps_the_group_layout_plus_spread_and_age():


    from social_pose_diffusion.msgs.keypoint_cloud import (cloud_field, cloud_to_frame, facilitator_cloud,
                                                           frame_to_cloud, stamp_ns)
    from social_pose_diffusion.ros.messages import RCLPY
    pose = simulate('musician', 3, 1.0, 30.0, 2).facilitator[0]
    spread = np.linspace(0, 0.01, len(pose))
    header = RCLPY.header(1_700_000_000_123_456_789)
    msg = facilitator_cloud(pose[:, :2], spread, 0.125, header, RCLPY)
    frame = cloud_to_frame(msg)
    assert list(frame.ids) == [0] and np.allclose(frame.keypoints[0, :, :2], pose[:, :2], atol=1e-6)
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
    from social_pose_diffusion.ros.launcher import Graph, node_command
    graph = Graph(overrides={'policy_node': {'device': 'cpu', 'model_path': '', 'samples': 2, 'reanchor': 0.5,
                                             'autostart': True}})
    cmd = graph.command('policy_node')
    assert cmd[cmd.index('--ros-args') + 1:cmd.index('--ros-args') + 3] == [
        '--params-file', str(ROOT / 'config' / 'facilitator.yaml')]
    assert {'device:=cpu', 'model_path:=""', 'samples:=2', 'reanchor:=0.5', 'autostart:=true'} <= set(cmd)
    assert re.search(r'policy_node', cmd[0] + ' '.join(cmd[:3]))
    with pytest.raises(FileNotFoundError):
        Graph(params_files=['/nonexistent.yaml'])
    assert node_command('retarget_node', [], remaps={'/a': '/b'})[-2:] == ['-r', '/a:=/b']
