"""Node parameters: the specs' rules, the shipped parameter files, refusals and live changes on
real nodes, an invalid parameter file at start-up (one line, exit 2) and Ctrl-C (exit 0)."""

import json
import math
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
import yaml

from social_pose_diffusion.ros.launcher import Graph, node_command
from social_pose_diffusion.ros.params import NODES, POLICY, VISUALIZER, problem

pytestmark = [pytest.mark.ros]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@pytest.mark.parametrize(
    'name, value, reason',
    [
        ('control_rate', 0.0, 'outside'),
        ('control_rate', -3.0, 'outside'),
        ('control_rate', math.nan, 'finite'),
        ('control_rate', math.inf, 'finite'),
        ('steps', -5, 'outside'),
        ('reanchor', 5.0, 'outside'),
        ('seat_return_s', -0.5, 'outside'),
        ('seat_return_s', math.inf, 'finite'),
        ('max_clock_offset', math.nan, 'finite'),
        ('facilitator_seat_u', 1.0, 'neither'),
        ('facilitator_seat_u', -0.5, 'neither'),
        ('image_transport', 'h264', 'not one of'),
        ('sampler', 'bogus', 'not one of'),
        ('device', 'gpu', 'not auto'),
        ('image_topic', 'camera//image', "must not contain repeated '/'"),
        ('image_topic', '', 'must not be empty'),
        ('image_topic', 'camera/image raw', 'not a topic name'),
    ],
)
def test_policy_rules_refuse_with_a_reason(name, value, reason):
    assert reason in problem(POLICY[name], value)


def test_valid_values_pass_and_lists_are_checked_item_by_item():
    for name, value in (
        ('control_rate', 30.0),
        ('control_rate', 0.1),
        ('steps', 0),
        ('facilitator_seat_u', -1.0),
        ('facilitator_seat_u', 0.0),
        ('facilitator_seat_u', 0.999),
        ('sampler', ''),
        ('sampler', 'ddim'),
        ('device', 'cuda:1'),
        ('image_topic', 'camera/image_raw'),
        ('image_topic', '~/image'),
    ):
        assert problem(POLICY[name], value) is None, (name, value)
    assert 'needs 4 values' in problem(VISUALIZER['group_color'], [0.2, 0.6])
    assert 'outside' in problem(VISUALIZER['group_color'], [0.2, 0.6, 1.0, 1.5])
    assert 'finite' in problem(VISUALIZER['facilitator_color'], [0.2, math.nan, 1.0, 1.0])
    assert 'outside' in problem(VISUALIZER['max_rate'], 0.0)


@pytest.mark.parametrize('name', ['facilitator.yaml', 'replay.yaml'])
def test_shipped_parameter_files_hold_valid_values(name):
    data = yaml.safe_load((ROOT / 'config' / name).read_text())
    for section, body in data.items():
        specs = (
            {k: v for s in NODES.values() for k, v in s.items()}
            if section == '/**'
            else NODES[section]
        )
        for key, value in body['ros__parameters'].items():
            if key == 'use_sim_time':
                continue
            assert key in specs, (section, key)
            assert problem(specs[key], value) is None, (section, key, value)


def png_header(width, height):
    """A valid PNG of a few bytes whose header declares ``width`` x ``height`` pixels."""

    def chunk(kind, body):
        return (
            struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
        )

    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (
        b'\x89PNG\r\n\x1a\n'
        + chunk(b'IHDR', ihdr)
        + chunk(b'IDAT', zlib.compress(b''))
        + chunk(b'IEND', b'')
    )


def live_driver():
    """Runs in a child process: real node instances, parameters set as the service sets them."""
    import numpy as np
    import rclpy
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CompressedImage

    from social_pose_diffusion.msgs.images import bgr_to_jpeg
    from social_pose_diffusion.ros.nodes.keypoints_node import KeypointsNode
    from social_pose_diffusion.ros.nodes.policy_node import PolicyNode
    from social_pose_diffusion.ros.nodes.retarget_node import RetargetNode
    from social_pose_diffusion.ros.nodes.visualizer_node import VisualizerNode

    rclpy.init(
        args=[
            '--ros-args',
            '-p',
            'input:=keypoints',
            '-p',
            'device:=cpu',
            '-p',
            'radius:=3',
            '-p',
            'facilitator_color:=[1, 0, 0, 1]',
        ]
    )
    nodes = {
        'keypoints': KeypointsNode(),
        'policy': PolicyNode(),
        'retarget': RetargetNode(),
        'visualizer': VisualizerNode(),
    }
    out = {
        'coerced': [
            nodes['visualizer'].params['radius'],
            nodes['visualizer'].params['facilitator_color'],
        ]
    }

    # The default limit refuses a PNG of a few bytes declaring 20000 x 10000 pixels.
    kp = nodes['keypoints']
    bomb = CompressedImage(format='png', data=png_header(20000, 10000))
    bomb.header.stamp.sec = 1
    kp._process(bomb)
    out['rejected_bomb'] = kp._stats.counters.get('rejected inputs', 0)

    def put(node, name, value):
        r = nodes[node].set_parameters([Parameter(name, value=value)])[0]
        return [r.successful, r.reason]

    cases = [
        ('policy', 'control_rate', 0.0),
        ('policy', 'control_rate', float('nan')),
        ('policy', 'control_rate', float('inf')),
        ('policy', 'steps', -5),
        ('policy', 'reanchor', 5.0),
        ('policy', 'max_clock_offset', float('nan')),
        ('policy', 'autostart', False),
        ('policy', 'control_rate', 'fast'),
        ('visualizer', 'max_rate', 0.0),
        ('visualizer', 'group_color', [0.1, 0.2]),
        ('retarget', 'diagnostics_period', 0.0),
        ('keypoints', 'max_image_pixels', 0),
        ('keypoints', 'facilitator_seat_u', 1.2),
        ('keypoints', 'image_topic', '/other'),
    ]
    out['refused'] = {f'{n}.{k}={v}': put(n, k, v) for n, k, v in cases}
    out['unknown_start_configure'] = None
    put('policy', 'facilitator_seat_u', -1.0)
    out['unknown_start_configure'] = str(nodes['policy'].trigger_configure())
    put('policy', 'facilitator_seat_u', 0.25)
    out['configured'] = str(nodes['policy'].trigger_configure())
    out['sampler_for_flow'] = put('policy', 'sampler', 'ddim')
    out['seat_unknown_when_configured'] = put('policy', 'facilitator_seat_u', -1.0)
    out['accepted'] = {
        f'{n}.{k}': put(n, k, v)[0]
        for n, k, v in (
            ('visualizer', 'max_rate', 2.5),
            ('visualizer', 'group_color', [0.0, 0.0, 0.0, 1.0]),
            ('retarget', 'diagnostics_period', 0.25),
            ('retarget', 'max_velocity', 1.0),
            ('retarget', 'joint_prefix', 'a_'),
            ('keypoints', 'max_image_pixels', 1000),
            ('policy', 'samples', 2),
            ('policy', 'steps', 7),
        )
    }
    out['values'] = {
        'max_rate': nodes['visualizer'].params['max_rate'],
        'group_color': nodes['visualizer'].params['group_color'],
        'retarget_timer_ns': nodes['retarget']._diagnostics.timer.timer_period_ns,
        'joint_names': nodes['retarget']._names[:1],
        'max_image_pixels': nodes['keypoints'].params['max_image_pixels'],
        'samples': nodes['policy'].params['samples'],
    }
    # A limit of 1000 pixels (set above) refuses a 960 x 480 frame.
    jpeg = CompressedImage(format='jpeg', data=bgr_to_jpeg(np.zeros((480, 960, 3), np.uint8)))
    jpeg.header.stamp.sec = 2
    kp._process(jpeg)
    out['rejected_with_limit'] = kp._stats.counters.get('rejected inputs', 0)
    for node in nodes.values():
        getattr(node, 'shutdown', lambda: None)()
        node.destroy_node()
    rclpy.shutdown()
    print('LIVE ' + json.dumps(out), flush=True)


def test_nodes_refuse_invalid_values_and_apply_valid_ones_live(run_python):
    proc = run_python(call=('test_ros_params.live_driver',))
    out, _ = proc.communicate(timeout=240)
    line = [x for x in out.splitlines() if x.startswith('LIVE ')]
    assert line, out[-3000:]
    got = json.loads(line[0][5:])
    assert got['coerced'] == [3.0, [1.0, 0.0, 0.0, 1.0]]  # integers given for doubles
    for case, (ok, reason) in got['refused'].items():
        assert not ok and reason, case
    assert 'read-only' in got['refused']['policy.autostart=False'][1]
    assert 'read-only' in got['refused']['keypoints.image_topic=/other'][1]
    assert 'needs 4 values' in got['refused']['visualizer.group_color=[0.1, 0.2]'][1]
    assert 'FAILURE' in got['unknown_start_configure'] and 'SUCCESS' in got['configured']
    assert "facilitator's start is unknown" in out and 'facilitator_seat_u' in out
    assert not got['sampler_for_flow'][0] and 'euler' in got['sampler_for_flow'][1]
    assert not got['seat_unknown_when_configured'][0]
    assert all(got['accepted'].values()), got['accepted']
    assert got['rejected_bomb'] == 1 and 'exceeds limit' in out
    assert got['rejected_with_limit'] == 2 and 'exceeds the limit of 1000 pixels' in out
    assert got['values'] == {
        'max_rate': 2.5,
        'group_color': [0.0, 0.0, 0.0, 1.0],
        'retarget_timer_ns': 250_000_000,
        'joint_names': ['a_head_yaw'],
        'max_image_pixels': 1000,
        'samples': 2,
    }


@pytest.mark.parametrize(
    'node, section, body, words',
    [
        ('retarget_node', 'retarget_node', {'diagnostics_period': 0.0}, 'diagnostics_period'),
        ('visualizer_node', 'visualizer_node', {'group_color': [0.1, 0.2]}, 'group_color'),
        ('policy_node', 'policy_node', {'control_rate': float('nan')}, 'control_rate'),
        ('keypoints_node', 'keypoints_node', {'image_topic': 'camera//image'}, 'image_topic'),
        (
            'keypoints_node',
            'keypoints_node',
            {'image_transport': 'h264', 'input': 'keypoints'},
            'image_transport',
        ),
    ],
)
def test_an_invalid_parameter_file_is_one_line_and_exit_2(
    node, section, body, words, tmp_path, ros_env
):
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump({section: {'ros__parameters': body}}).replace('nan', '.nan'))
    run = subprocess.run(
        node_command(node, [path]), env=ros_env, capture_output=True, text=True, timeout=120
    )
    text = run.stdout + run.stderr
    assert run.returncode == 2, text
    assert 'Traceback' not in text and words in text
    errors = [x for x in text.splitlines() if 'ERROR' in x]
    assert len(errors) == 1 and f'invalid parameter {words}' in errors[0], text


def test_ctrl_c_reaching_the_process_group_ends_every_node_with_exit_0(ros_env, tmp_path):
    overrides = {'keypoints_node': {'input': 'keypoints'}, 'policy_node': {'device': 'cpu'}}
    graph = Graph(overrides=overrides, env=ros_env, log_dir=tmp_path / 'logs').start()
    try:
        end = time.monotonic() + 120
        while 'warm-up inference' not in graph.log('policy_node') and time.monotonic() < end:
            graph.check()
            time.sleep(0.2)
        assert 'warm-up inference' in graph.log('policy_node'), graph.log('policy_node')
        time.sleep(0.5)
        # A terminal's Ctrl-C, then the launcher's SIGINT and more, until each node has exited:
        # later signals reach it while it shuts down and while Python finalizes.
        end = time.monotonic() + 60
        while any(p.poll() is None for p in graph.procs.values()) and time.monotonic() < end:
            for proc in graph.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            time.sleep(0.02)
        codes = {name: proc.wait(timeout=30) for name, proc in graph.procs.items()}
    finally:
        graph.stop()
    logs = {name: graph.log(name) for name in graph.nodes}
    assert codes == dict.fromkeys(graph.nodes, 0), (codes, {n: t[-1500:] for n, t in logs.items()})
    for name, text in logs.items():
        assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, (name, text[-1500:])


STYLES = ('music_teacher', 'musician', 'teacher')


def style_driver(plain_model: str):
    """Runs in a child process beside a policy node started with style:=musician (over DDS).

    ``plain_model``: a model without styles.
    """
    import rclpy
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from sensor_msgs.msg import PointCloud2

    from social_pose_diffusion.core.frames import GroupFrame
    from social_pose_diffusion.msgs.keypoint_cloud import frame_to_cloud
    from social_pose_diffusion.ros.common import STATE_QOS
    from social_pose_diffusion.ros.messages import RCLPY
    from social_pose_diffusion.sources.sim import simulate

    rclpy.init()
    node = rclpy.create_node('style_driver')
    poses = []
    pose_sub = node.create_subscription(
        PointCloud2, '/facilitator/pose', lambda m: poses.append(1), STATE_QOS
    )
    pub = node.create_publisher(PointCloud2, '/humans/keypoints', STATE_QOS)
    clients = {
        name: node.create_client(kind, f'/policy_node/{name}')
        for name, kind in (
            ('get_state', GetState),
            ('change_state', ChangeState),
            ('set_parameters', SetParameters),
        )
    }

    def call(name, request):
        clients[name].wait_for_service(timeout_sec=120)
        future = clients[name].call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=120)
        return future.result()

    def state():
        return call('get_state', GetState.Request()).current_state.label

    def transition(tid):
        return call('change_state', ChangeState.Request(transition=Transition(id=tid))).success

    def put(name, value):
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
        result = call('set_parameters', request).results[0]
        return [result.successful, result.reason]

    session = simulate('teacher', 3, 2.0, 30.0, 3)

    def served(n=30):
        """Poses published while ``n`` group frames are (at 30 Hz)."""
        before = len(poses)
        for t in range(n):
            stamp = time.time_ns()
            frame = GroupFrame(stamp, session.participant_ids, session.participants[t])
            pub.publish(frame_to_cloud(frame, RCLPY.header(stamp), RCLPY))
            end = time.monotonic() + 1 / 30
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.01)
        return len(poses) - before

    out = {}
    if not clients['get_state'].wait_for_service(timeout_sec=120):
        print('STYLE {}', flush=True)  # the node never came up: its log says why
        return
    end = time.monotonic() + 120
    while time.monotonic() < end and (
        pub.get_subscription_count() == 0
        or pose_sub.get_publisher_count() == 0
        or state() != 'active'
    ):
        rclpy.spin_once(node, timeout_sec=0.2)
    out['active_with_musician'] = state() == 'active'
    out['teacher'] = put('style', 'teacher')
    out['dancer'] = put('style', 'dancer')
    out['served_after_refusal'] = served()
    transition(Transition.TRANSITION_DEACTIVATE)
    transition(Transition.TRANSITION_CLEANUP)
    out['dancer_unconfigured'] = put('style', 'dancer')  # checked at the next configure
    out['configure_dancer'] = transition(Transition.TRANSITION_CONFIGURE)
    put('model_path', plain_model)
    put('style', 'teacher')
    out['configure_styleless'] = transition(Transition.TRANSITION_CONFIGURE)
    put('style', '')
    out['configure_default'] = transition(Transition.TRANSITION_CONFIGURE)
    out['state'] = state()
    node.destroy_node()
    rclpy.shutdown()
    print('STYLE ' + json.dumps(out), flush=True)


def test_the_policy_takes_a_style_its_model_knows_and_refuses_others(
    run_python, ros_env, tmp_path
):
    from social_pose_diffusion.learning.train import make_config
    from social_pose_diffusion.policy import Policy
    from social_pose_diffusion.sources.sim import simulate

    session = simulate('teacher', 3, 12.0, 30.0, seed=3)
    config = make_config([session], d_model=32, layers=1, heads=2, horizon=8, styles=STYLES)
    Policy(config).save(tmp_path / 'styled.safetensors')  # untrained: only its styles matter
    plain = make_config([session], d_model=32, layers=1, heads=2, horizon=8)
    Policy(plain).save(tmp_path / 'plain.safetensors')
    overrides = {
        'policy_node': {
            'model_path': str(tmp_path / 'styled'),
            'device': 'cpu',
            'style': 'musician',
        }
    }
    with Graph(
        overrides=overrides, nodes=('policy_node',), env=ros_env, log_dir=tmp_path / 'logs'
    ) as graph:
        proc = run_python(call=('test_ros_params.style_driver', str(tmp_path / 'plain')))
        out, _ = proc.communicate(timeout=300)
        alive = graph.alive()
        log = graph.log('policy_node')
    line = [x for x in out.splitlines() if x.startswith('STYLE ')]
    assert line, out[-3000:] + log[-3000:]
    got = json.loads(line[0][6:])
    assert got['active_with_musician'] and got['teacher'] == [True, ''], (got, log[-3000:])
    ok, reason = got['dancer']
    assert not ok and reason == (
        "style: style 'dancer' is not one the model knows (music_teacher, musician, teacher)"
    )
    assert got['served_after_refusal'] > 10 and alive == {'policy_node': True}
    assert got['dancer_unconfigured'][0] and not got['configure_dancer']
    refusals = [x for x in log.splitlines() if 'configure failed' in x]
    assert len(refusals) == 2, log[-3000:]
    assert (
        "style: style 'dancer' is not one the model knows (music_teacher, musician, teacher)"
        in (refusals[0])
    )
    assert (
        not got['configure_styleless']
        and "'teacher' is not one the model knows (none)" in (refusals[1])
    )
    assert got['configure_default'] and got['state'] == 'inactive'
