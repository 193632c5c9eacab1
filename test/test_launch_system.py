"""Both launch files through the real ROS 2 launch system on a plain colcon build, as on a robot.

Needs ``launch``, ``launch_ros`` and ``ros2launch`` (a ROS 2 install; for development
the copy described in the README's robot section) and a ``ros2`` command with
``bag play`` / ``bag record``; skipped with the reason otherwise. A short simulated
session is played onto the camera topic (``facilitator.launch.py``) or replayed from
its bag (``replay.launch.py``); what the graph publishes is observed over DDS from
another process.
"""

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_foundation_colcon import PACKAGE, REPO, colcon_build

from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame
from social_pose_diffusion.observation.features import centroid
from social_pose_diffusion.ros import spec
from social_pose_diffusion.sources.bags import read_messages, read_session, topic_counts
from social_pose_diffusion.sources.sim import simulate, write_session_bag

pytestmark = [pytest.mark.slow, pytest.mark.ros]

MISSING = [
    m for m in ('launch', 'launch_ros', 'ros2launch') if importlib.util.find_spec(m) is None
]
if MISSING:
    pytest.skip(
        f'{", ".join(MISSING)} not importable: no ROS 2 launch system (see the README, '
        '"On a robot with ROS 2")',
        allow_module_level=True,
    )
if shutil.which('ros2') is None:
    pytest.skip('no ros2 command on PATH (ros2 bag play / record)', allow_module_level=True)

SEAT = 0.0  # given as facilitator_seat_u:=0, an integer literal for a double parameter
LAUNCH = (
    'import sys\n'
    'from ros2launch.api import get_share_file_path_from_package, launch_a_launch_file\n'
    'path = get_share_file_path_from_package(package_name=sys.argv[1],\n'
    '                                        file_name=sys.argv[2])\n'
    'sys.exit(launch_a_launch_file(launch_file_path=path,\n'
    '                              launch_file_arguments=sys.argv[3:],\n'
    '                              noninteractive=True, args=None))\n'
)
# Observes one graph over DDS: waits until its nodes run and policy_node is active, prints READY,
# then records poses and joint states until its stdin closes, and prints what it saw as JSON.
OBSERVER = r"""
import json, sys, threading, time
import rclpy
from lifecycle_msgs.srv import GetState
from rcl_interfaces.srv import ListParameters
from sensor_msgs.msg import JointState, PointCloud2
from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame
from social_pose_diffusion.observation.features import centroid
from social_pose_diffusion.ros import spec
from social_pose_diffusion.ros.common import STATE_QOS

ns, camera = sys.argv[1], sys.argv[2]
prefix = '/' + ns if ns else ''
rclpy.init()
node = rclpy.create_node('launch_test_observer')
seen = {'poses': [], 'joint_names': None, 'joint_states': 0}
def on_pose(msg):
    seen['poses'].append(cloud_to_frame(msg).keypoints[0, :, :2].tolist())
def on_joints(msg):
    seen['joint_states'] += 1
    seen['joint_names'] = list(msg.name)
for base in ('', prefix):  # the namespaced topics, and absolute ones of nodes that ignore it
    node.create_subscription(PointCloud2, base + '/facilitator/pose', on_pose, STATE_QOS)
    node.create_subscription(JointState, base + '/facilitator/joint_states', on_joints, 10)
    if not prefix:
        break
threading.Thread(target=rclpy.spin, args=(node,), daemon=True).start()

def call(client, request):
    if not client.wait_for_service(timeout_sec=2.0):
        return None
    future = client.call_async(request)
    end = time.monotonic() + 5.0
    while not future.done() and time.monotonic() < end:
        time.sleep(0.05)
    return future.result()

names = {'keypoints_node', 'policy_node', 'retarget_node', 'visualizer_node'}
get_state = node.create_client(GetState, prefix + '/policy_node/get_state')
listed = node.create_client(ListParameters, prefix + '/policy_node/list_parameters')
end, state = time.monotonic() + 120.0, None
while time.monotonic() < end:
    running = {n for n, s in node.get_node_names_and_namespaces() if s == (prefix or '/')}
    reply = call(get_state, GetState.Request()) if names <= running else None
    state = reply.current_state.label if reply else None
    if state == 'active' and node.count_subscribers(camera) > 0:
        break
    time.sleep(0.5)
params = call(listed, ListParameters.Request())
seen.update(running=sorted(running), policy_state=state,
            camera_subscribers=node.count_subscribers(camera),
            policy_parameters=sorted(params.result.names) if params else [])
print('READY', flush=True)
sys.stdin.read()
by_node = node.get_publisher_names_and_types_by_node  # the graph's, not this observer's topics
seen['published'] = sorted({t for n in names for t, _ in by_node(n, prefix or '/')})
print('SEEN' + json.dumps(seen), flush=True)
node.destroy_node()
rclpy.shutdown()
"""


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A plain colcon build and the environment of a shell that sourced it (DDS on loopback)."""
    root = tmp_path_factory.mktemp('launch_ws')
    prefix = colcon_build(root)
    site_dir = next((prefix / 'lib').glob('python3*/site-packages'))
    launch_site = Path(importlib.util.find_spec('launch').origin).parents[1]
    inherited = [
        p
        for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
        if p and Path(p).resolve() != REPO
    ]  # the install, not this checkout
    path = [str(site_dir), str(launch_site)] + inherited
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(path),
        AMENT_PREFIX_PATH=os.pathsep.join(
            [str(prefix)] + [p for p in [os.environ.get('AMENT_PREFIX_PATH')] if p]
        ),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ['PATH']]),
        ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
        PYTHONUNBUFFERED='1',
        ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 200)),
    )
    return root, prefix, env


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """The same short session as a compressed-image bag and as a raw-image bag."""
    root = tmp_path_factory.mktemp('launch_bags')
    session = simulate('musician', 3, 5.0, 30.0, 5)
    out = {}
    for kind in ('compressed', 'raw'):
        out[kind] = root / kind
        write_session_bag(
            session, out[kind], width=640, height=320, image_format=kind, progress=False
        )
    return out


def launch(env, cwd, launch_file, *args):
    log = open(cwd / f'{launch_file}.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, '-c', LAUNCH, PACKAGE, launch_file, *args],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return proc, cwd / f'{launch_file}.log'


def stop(proc, timeout=60):
    """SIGINT to the launch process (as Ctrl-C to ros2 launch); ``(exit code, orphans)``.

    Orphans: processes of the launch's group still running after it ended (killed here).
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10), True
    time.sleep(1.0)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        return code, True
    except ProcessLookupError:
        return code, False


def u_distance(a, b):
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


@pytest.fixture(scope='module')
def facilitator_run(workspace, bags):
    """facilitator.launch.py in namespace ``left`` with a custom params file, a camera stream."""
    root, _, env = workspace
    custom = root / 'custom.yaml'
    custom.write_text(
        yaml.safe_dump(
            {
                'keypoints_node': {'ros__parameters': {'image_transport': 'compressed'}},
                'retarget_node': {'ros__parameters': {'joint_prefix': 'custom_'}},
                'visualizer_node': {'ros__parameters': {'radiuss': 1.0}},  # misspelt
            }
        )
    )
    camera = '/camera/image_raw'
    proc, log = launch(
        env,
        root,
        'facilitator.launch.py',
        'namespace:=left',
        'device:=cpu',
        f'params_file:={custom}',
        'facilitator_seat_u:=0',
        'rviz:=true',
        'robot_state_publisher:=true',
    )
    observer = subprocess.Popen(
        [sys.executable, '-c', OBSERVER, 'left', camera + '/compressed'],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in observer.stdout:
            if line.startswith('READY'):
                break
        assert proc.poll() is None, log.read_text()[-4000:]
        # The camera: the bag's compressed stream at 1x, stamped as recorded (no /clock).
        subprocess.run(
            ['ros2', 'bag', 'play', str(bags['compressed'])],
            env=env,
            timeout=180,
            capture_output=True,
            check=True,
        )
        time.sleep(2.0)
        out, _ = observer.communicate('', timeout=60)
    finally:
        if observer.poll() is None:
            observer.kill()
        code, orphans = stop(proc)
    text = log.read_text()
    print(text[-3000:])
    assert not orphans, 'the launch ended and left processes running'
    seen = [json.loads(x[4:]) for x in out.splitlines() if x.startswith('SEEN')]
    assert seen, out[-3000:] + text[-3000:]
    return seen[0], text, code


def test_facilitator_launch_runs_every_node_and_publishes_poses_and_joint_states(facilitator_run):
    seen, log, code = facilitator_run
    assert seen['running'] == ['keypoints_node', 'policy_node', 'retarget_node', 'visualizer_node']
    assert seen['policy_state'] == 'active'
    assert 'process has died' not in log, 'facilitator_seat_u:=0 is coerced to a double'
    assert code == 0, 'Ctrl-C ends every node cleanly'
    poses = np.array(seen['poses'])
    assert len(poses) > 10 and seen['joint_states'] > 10, (len(poses), seen['joint_states'])
    assert np.ptp(poses, axis=0).max() > 1e-3, 'the policy planned: the pose moves'
    assert np.isfinite(poses).all()
    # rviz2 / robot_state_publisher are not installed here: skipped with a warning, not fatal.
    assert 'is not installed: not started' in log


def test_facilitator_launch_honours_a_custom_params_file(facilitator_run):
    seen, log, _ = facilitator_run
    assert 'visualizer_node declares no radiuss' in log
    assert seen['camera_subscribers'] > 0, 'image_transport: compressed from params_file'
    assert seen['joint_names'] and all(n.startswith('custom_') for n in seen['joint_names'])


def test_facilitator_launch_puts_the_graph_in_its_namespace(facilitator_run):
    seen, _, _ = facilitator_run
    if '/facilitator/pose' in seen['published']:
        pytest.xfail('the nodes still publish absolute topic names (relative names: nodes branch)')
    assert {
        '/left/facilitator/pose',
        '/left/facilitator/joint_states',
        '/left/humans/keypoints',
    } <= set(seen['published'])


def test_facilitator_pose_starts_at_the_configured_seat(facilitator_run):
    seen, _, _ = facilitator_run
    if 'facilitator_seat_u' not in seen['policy_parameters']:
        pytest.xfail(
            'policy_node has no facilitator_seat_u parameter yet (nodes branch); then '
            "add ('policy_node', 'facilitator_seat_u') to the seat argument in "
            'ros/spec.py'
        )
    first = np.array(seen['poses'][0])
    # The body's centroid, wrap-aware: at seat 0 the joints straddle the seam.
    assert u_distance(float(centroid(first)[0]), SEAT) < 0.05, first[:, 0]


def test_the_clock_offset_warning_is_logged_once(facilitator_run):
    """The camera stream is stamped as recorded, far from the node clock (no use_sim_time)."""
    _, log, _ = facilitator_run
    assert 1 <= log.count('from the node clock') <= 2, log.count('from the node clock')


def test_ctrl_c_to_the_whole_process_group_ends_every_node_cleanly(workspace):
    """A terminal's Ctrl-C reaches ros2 launch and every node at once."""
    root, _, env = workspace
    proc, log = launch(
        env,
        root,
        'facilitator.launch.py',
        'rviz:=false',
        'robot_state_publisher:=false',
        'device:=cpu',
    )
    end = time.monotonic() + 180
    while 'warm-up inference' not in log.read_text() and time.monotonic() < end:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    code, orphans = stop(proc)
    text = log.read_text()
    assert 'warm-up inference' in text and code == 0 and not orphans, text[-3000:]
    assert 'process has died' not in text, text[-3000:]


@pytest.mark.parametrize(
    'argument',
    ['facilitator_seat_u:=left', 'image_transport:=theora', 'params_file:=/nonexistent.yaml'],
)
def test_a_bad_launch_argument_stops_the_launch_before_any_process_starts(argument, workspace):
    root, _, env = workspace
    proc, log = launch(env, root, 'facilitator.launch.py', 'rviz:=false', argument)
    proc.wait(timeout=120)
    code, orphans = stop(proc)
    text = log.read_text()
    assert not orphans and code != 0 and argument.split(':=')[0] in text, text
    assert 'process started' not in text, text


@pytest.fixture(scope='module', params=['compressed', 'raw'])
def replay_run(request, workspace, bags):
    """replay.launch.py on the bag of one image kind: ``(kind, exit code, log, outputs bag)``."""
    kind = request.param
    root, _, env = workspace
    out = root / f'replay_{kind}'
    proc, log = launch(
        env, root, 'replay.launch.py', f'bag:={bags[kind]}', f'out:={out}', 'device:=cpu'
    )
    try:
        code = proc.wait(timeout=300)
    finally:
        _, orphans = stop(proc)
    text = log.read_text()
    print(text[-3000:])
    assert not orphans, text[-3000:]
    return kind, code, text, out


def test_replay_launch_plays_the_bag_through_the_graph_and_ends_by_itself(replay_run):
    kind, code, text, out = replay_run
    assert code == 0, text[-4000:]
    assert 'ended: shutting down' in text and 'process has died' not in text
    counts = {t: c for t, (_, c) in topic_counts(out).items()}
    assert counts.get('/humans/keypoints', 0) > 0, f'{kind} images reached perception: {counts}'
    assert counts.get('/facilitator/pose', 0) > 10, counts
    assert counts.get('/facilitator/joint_states', 0) > 10, counts
    poses = np.array(
        [
            cloud_to_frame(m).keypoints[0, :, :2]
            for _, _, m in read_messages(out, ['/facilitator/pose'])
        ]
    )
    assert np.isfinite(poses).all() and np.ptp(poses, axis=0).max() > 1e-3


def test_replay_starts_the_facilitator_at_the_bag_seat(replay_run, bags):
    kind, _, _, out = replay_run
    targets = spec.argument('replay', 'facilitator_seat_u').targets
    if ('policy_node', 'facilitator_seat_u') not in targets:
        pytest.xfail('replay.launch.py cannot pass the seat to policy_node yet (nodes branch)')
    first = next(
        cloud_to_frame(m).keypoints[0, :, :2]
        for _, _, m in read_messages(out, ['/facilitator/pose'])
    )
    seat = float(read_session(bags[kind]).info['facilitator_seat_u'])
    assert u_distance(float(centroid(first)[0]), seat) < 0.05, (centroid(first)[0], seat)
