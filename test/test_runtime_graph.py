"""The node graph in separate processes over real DDS (loopback): bad keypoint input, time jumps,
model files removed / corrupted / mismatched / non-finite between lifecycle runs, parameters
refused and applied over the parameter service, and a slow policy under a 30 Hz input. (The
control loop's timing is unit-tested on a fake clock in test_planning_follower.py.)

One graph (keypoints node on the external-detector input, policy, retarget, visualizer) serves
every phase; a driver process publishes and records, the test reads its JSON and the nodes' logs.
"""

import json
import shutil
from pathlib import Path

import pytest

from social_pose_diffusion.ros.launcher import Graph

pytestmark = [pytest.mark.ros, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def driver(model_dir):
    """Runs in a child process: every phase, one JSON line each."""
    import time

    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from sensor_msgs.msg import JointState, PointCloud2, PointField
    from visualization_msgs.msg import MarkerArray

    from social_pose_diffusion.core.frames import GroupFrame
    from social_pose_diffusion.msgs.keypoint_cloud import (
        cloud_field,
        cloud_to_frame,
        frame_to_cloud,
        stamp_ns,
    )
    from social_pose_diffusion.observation.features import centroid
    from social_pose_diffusion.retarget import joints as retarget
    from social_pose_diffusion.ros.common import STATE_QOS
    from social_pose_diffusion.ros.messages import RCLPY
    from social_pose_diffusion.sources.sim import simulate

    rclpy.init()
    node = rclpy.create_node('test_driver')
    session = simulate('teacher', 4, 20.0, 30.0, 3)
    got = {'pose': [], 'joints': [], 'markers': [], 'keypoints': [], 'diag': {}}

    def on_pose(msg):
        got['pose'].append(
            (
                stamp_ns(msg),
                float(cloud_field(msg, 'obs_age')[0]),
                cloud_field(msg, 'spread').tolist(),
                time.monotonic(),
                float(centroid(cloud_to_frame(msg).keypoints[0])[0]),
            )
        )

    def on_diag(msg):
        for s in msg.status:
            got['diag'][s.name] = {kv.key: kv.value for kv in s.values}

    node.create_subscription(PointCloud2, '/facilitator/pose', on_pose, STATE_QOS)
    node.create_subscription(
        JointState,
        '/facilitator/joint_states',
        lambda m: got['joints'].append((list(m.name), list(m.position))),
        10,
    )
    node.create_subscription(
        MarkerArray,
        '/facilitator/markers',
        lambda m: got['markers'].append(sorted({x.ns for x in m.markers})),
        10,
    )
    keypoints_sub = node.create_subscription(
        PointCloud2,
        '/humans/keypoints',
        lambda m: got['keypoints'].append((stamp_ns(m), len(cloud_to_frame(m)))),
        STATE_QOS,
    )
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    pub = node.create_publisher(PointCloud2, '/humans/keypoints_external', STATE_QOS)
    get_state = node.create_client(GetState, '/policy_node/get_state')
    change = node.create_client(ChangeState, '/policy_node/change_state')
    set_params = node.create_client(SetParameters, '/policy_node/set_parameters')

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)

    def call(client, request, timeout=120.0):
        client.wait_for_service(timeout_sec=timeout)
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        return future.result()

    def state():
        return call(get_state, GetState.Request()).current_state.label

    def transition(tid):
        return bool(call(change, ChangeState.Request(transition=Transition(id=tid))).success)

    def emit(phase, **values):
        print('PHASE ' + json.dumps({'phase': phase, **values}), flush=True)

    def publish(frame_or_msg, stamp):
        msg = frame_or_msg
        if isinstance(frame_or_msg, GroupFrame):
            msg = frame_to_cloud(frame_or_msg, RCLPY.header(stamp), RCLPY)
        msg.header.stamp = RCLPY.stamp(stamp)
        pub.publish(msg)

    frame_index = [0]

    def good_frames(n, offset_ns=0):
        """``n`` session frames at 30 Hz stamped with the clock (+ offset); their stamps."""
        stamps = []
        for _ in range(n):
            t = frame_index[0] % len(session)
            frame_index[0] += 1
            stamp = time.time_ns() + offset_ns
            publish(GroupFrame(stamp, session.participant_ids, session.participants[t]), stamp)
            stamps.append(stamp)
            spin(1 / 30)
        return stamps

    # Ready: our input is subscribed, we hear the keypoints node, the policy node is active (warm).
    start = time.monotonic()
    while (
        pub.get_subscription_count() == 0
        or keypoints_sub.get_publisher_count() == 0
        or state() != 'active'
    ):
        spin(0.2)
        if time.monotonic() - start > 120:
            emit('ready', ok=False)
            return
    spin(0.5)
    emit('ready', ok=True, seconds=time.monotonic() - start)

    good_frames(45)
    spin(0.5)
    limits = [retarget.LIMITS[n] for n in retarget.JOINT_NAMES]
    within = all(
        lo - 1e-9 <= v <= hi + 1e-9 for _, pos in got['joints'] for v, (lo, hi) in zip(pos, limits)
    )
    emit(
        'normal',
        poses=len(got['pose']),
        first_u=got['pose'][0][4] if got['pose'] else None,
        keypoints=len(got['keypoints']),
        joints=len(got['joints']),
        joint_names=got['joints'][-1][0] if got['joints'] else [],
        within_limits=within,
        marker_ns=sorted({ns for m in got['markers'] for ns in m}),
        spread_len=len(got['pose'][-1][2]) if got['pose'] else 0,
        spread_max=max((max(p[2]) for p in got['pose']), default=0.0),
    )

    def cloud(frame, fields=None, mutate=None):
        msg = frame_to_cloud(frame, RCLPY.header(0), RCLPY)
        if mutate:
            mutate(msg)
        return msg

    base = GroupFrame(0, session.participant_ids, session.participants[0].copy())
    nan = GroupFrame(0, base.ids, base.keypoints.copy())
    nan.keypoints[0, 3, 0] = np.nan
    nan.keypoints[1, :, 1] = np.inf
    nan.keypoints[2, 5, 2] = -np.inf

    def extra_fields(msg):
        # An extra leading field shifts every offset; readers must find fields by name.
        data = np.frombuffer(bytes(msg.data), np.uint8).reshape(-1, msg.point_step)
        msg.data = np.hstack([np.full((len(data), 4), 7, np.uint8), data]).tobytes()
        msg.fields = [PointField(name='foo', offset=0, datatype=PointField.FLOAT32, count=1)] + [
            PointField(name=f.name, offset=f.offset + 4, datatype=f.datatype, count=1)
            for f in msg.fields
        ]
        msg.point_step += 4
        msg.row_step = msg.point_step * msg.width

    def drop_field(msg):
        msg.fields = [f for f in msg.fields if f.name != 'v']

    def truncate(msg):
        msg.data = bytes(msg.data)[: len(msg.data) // 2]

    def bad_type(msg):
        msg.fields[2].datatype = 42

    def big_endian(msg):
        msg.is_bigendian = True

    rng = np.random.default_rng(0)
    crowd = GroupFrame(
        0,
        np.arange(20, dtype=np.int32),
        np.concatenate(
            [
                rng.uniform(0, 1, (20, 13, 1)),
                rng.uniform(0.4, 0.7, (20, 13, 1)),
                np.ones((20, 13, 1)),
            ],
            -1,
        ).astype(np.float32),
    )
    cases = {
        'nan_inf': cloud(nan),
        'unknown_fields': cloud(base, mutate=extra_fields),
        'missing_field': cloud(base, mutate=drop_field),
        'truncated': cloud(base, mutate=truncate),
        'unknown_datatype': cloud(base, mutate=bad_type),
        'big_endian': cloud(base, mutate=big_endian),
        'no_people': cloud(GroupFrame(0)),
        'twenty_people': cloud(crowd),
    }
    results = {}
    for name, msg in cases.items():
        poses_before = len(got['pose'])
        stamp = time.time_ns()
        publish(msg, stamp)
        spin(0.3)
        answered = [n for s, n in got['keypoints'] if s == stamp]
        stamps = good_frames(6)
        spin(0.3)
        served = any(s == stamps[-1] for s, _ in got['keypoints'])
        # Poses planned from the good frames after the bad one: their observation stamp is one
        # of them (the control loop alone would only hold an older plan).
        planned = [
            p
            for p in got['pose'][poses_before:]
            if any(abs(p[0] - p[1] * 1e9 - s) < 1e6 for s in stamps)
        ]
        results[name] = {
            'output_people': answered[0] if answered else None,
            'served_next': served,
            'planned_from_good': len(planned),
        }
    emit('bad_input', results=results)

    # A looping bag: stamps jump 10 s back, then carry on.
    resets_before = int(got['diag'].get('/policy_node', {}).get('state resets', 0))
    poses_before = len(got['pose'])
    back = good_frames(15, offset_ns=-10_000_000_000)
    good_frames(15)
    spin(1.2)
    emit(
        'time_jump',
        resets_before=resets_before,
        policy_resets=int(got['diag'].get('/policy_node', {}).get('state resets', 0)),
        keypoint_resets=int(got['diag'].get('/keypoints_node', {}).get('time resets', 0)),
        back_served=any(s in back for s, _ in got['keypoints']),
        poses=len(got['pose']) - poses_before,
    )

    # Model files between lifecycle runs.
    weights, config = Path(model_dir) / 'model.safetensors', Path(model_dir) / 'model.json'
    keep_w, keep_c = weights.read_bytes(), config.read_text()
    steps = {
        'deactivate': transition(Transition.TRANSITION_DEACTIVATE),
        'cleanup': transition(Transition.TRANSITION_CLEANUP),
    }
    weights.unlink()
    steps['configure_missing'] = transition(Transition.TRANSITION_CONFIGURE)
    weights.write_bytes(b'not a safetensors file' * 10)
    steps['configure_corrupt'] = transition(Transition.TRANSITION_CONFIGURE)
    weights.write_bytes(keep_w)
    cfg = json.loads(keep_c)
    cfg['d_model'] = cfg['d_model'] * 2
    config.write_text(json.dumps(cfg))
    steps['configure_mismatched'] = transition(Transition.TRANSITION_CONFIGURE)
    steps['state_after_failures'] = state()
    config.write_text(keep_c)
    steps['configure_restored'] = transition(Transition.TRANSITION_CONFIGURE)
    steps['activate'] = transition(Transition.TRANSITION_ACTIVATE)
    poses_before = len(got['pose'])
    good_frames(30)
    spin(0.3)
    steps['poses_after_restore'] = len(got['pose']) - poses_before
    emit('model_files', **steps)

    def set_parameter(name, value):
        """``(accepted, reason)`` of a SetParameters call for one value."""
        kinds = {
            bool: (ParameterType.PARAMETER_BOOL, 'bool_value'),
            int: (ParameterType.PARAMETER_INTEGER, 'integer_value'),
            float: (ParameterType.PARAMETER_DOUBLE, 'double_value'),
            str: (ParameterType.PARAMETER_STRING, 'string_value'),
        }
        kind, field = kinds[type(value)]
        request = SetParameters.Request(
            parameters=[Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))]
        )
        result = call(set_params, request).results[0]
        return result.successful, result.reason

    # A model config with a non-finite speed limit: refused at configure, or every plan refused.
    transition(Transition.TRANSITION_DEACTIVATE)
    transition(Transition.TRANSITION_CLEANUP)
    config.write_text(json.dumps({**json.loads(keep_c), 'max_speed': [float('nan')] * 13}))
    configured = transition(Transition.TRANSITION_CONFIGURE)
    poses_before = len(got['pose'])
    activated = configured and transition(Transition.TRANSITION_ACTIVATE)
    if activated:
        good_frames(30)
        spin(1.5)
    nan_poses = got['pose'][poses_before:]
    emit(
        'non_finite_model',
        configured=configured,
        activated=activated,
        poses=len(nan_poses),
        finite=all(np.isfinite(p[1]) and np.isfinite(p[2]).all() for p in nan_poses),
        refused=int(got['diag'].get('/policy_node', {}).get('non-finite plans refused', 0)),
    )
    if configured:
        transition(Transition.TRANSITION_DEACTIVATE)
        transition(Transition.TRANSITION_CLEANUP)
    config.write_text(keep_c)
    transition(Transition.TRANSITION_CONFIGURE)

    # Invalid values are refused with a reason; valid ones are taken.
    refused = {
        f'{n}={v}': set_parameter(n, v)
        for n, v in (
            ('control_rate', 0.0),
            ('control_rate', -1.0),
            ('control_rate', float('nan')),
            ('control_rate', float('inf')),
            ('steps', -5),
            ('reanchor', 5.0),
            ('max_clock_offset', float('nan')),
            ('sampler', 'ddim'),
            ('facilitator_seat_u', 1.5),
            ('samples', 0),
        )
    }
    accepted = {
        f'{n}={v}': set_parameter(n, v)[0] for n, v in (('control_rate', 0.5), ('samples', 2))
    }
    slow_loop = transition(Transition.TRANSITION_ACTIVATE)
    before = len(got['pose'])
    good_frames(3)
    spin(1.0)
    transition(Transition.TRANSITION_DEACTIVATE)
    emit(
        'parameters',
        refused=refused,
        accepted=accepted,
        activated=slow_loop,
        poses=len(got['pose']) - before,
        reset=set_parameter('control_rate', 30.0)[0],
    )

    # A slow policy (hundreds of flow steps per plan) under a 30 Hz input.
    set_ok = set_parameter('steps', 1500)[0]
    activated = transition(Transition.TRANSITION_ACTIVATE)
    # The first pose comes with the first (slow) plan; count from there.
    before, waited = len(got['pose']), time.monotonic()
    while len(got['pose']) == before and time.monotonic() - waited < 120:
        good_frames(1)
    spin(1.2)
    plans_before = int(got['diag'].get('/policy_node', {}).get('plans', 0))
    first = len(got['pose'])
    good_frames(120)
    window = got['pose'][first:]
    spin(1.2)
    diag = got['diag'].get('/policy_node', {})
    emit(
        'slow_policy',
        set_ok=set_ok,
        activated=activated,
        poses=len(window),
        plans=int(diag.get('plans', 0)) - plans_before,
        dropped=int(diag.get('dropped observations (planner busy)', 0)),
        policy_latency_p95_ms=float(diag.get('policy latency p95 (ms)', 0)),
    )
    node.destroy_node()
    rclpy.shutdown()


@pytest.fixture
def model_copy(tmp_path):
    """The packaged default model copied where the test may remove or corrupt it."""
    out = tmp_path / 'model'
    out.mkdir()
    shutil.copy(ROOT / 'models' / 'default.safetensors', out / 'model.safetensors')
    shutil.copy(ROOT / 'models' / 'default.json', out / 'model.json')
    return out


def test_graph_survives_bad_input_time_jumps_model_errors_and_a_slow_policy(
    ros_env, run_python, model_copy, tmp_path
):
    overrides = {
        'keypoints_node': {'input': 'keypoints'},
        'policy_node': {'model_path': str(model_copy), 'device': 'cpu', 'facilitator_seat_u': 0.9},
    }
    with Graph(overrides=overrides, env=ros_env, log_dir=tmp_path / 'logs') as graph:
        proc = run_python(call=('test_runtime_graph.driver', str(model_copy)))
        out, _ = proc.communicate(timeout=300)
        alive = graph.alive()
        logs = {name: graph.log(name) for name in graph.nodes}
    print(out)
    phases = {
        p['phase']: p
        for p in (json.loads(line[6:]) for line in out.splitlines() if line.startswith('PHASE '))
    }
    assert phases.get('ready', {}).get('ok'), out[-3000:]
    assert all(alive.values()), (alive, {n: text[-1500:] for n, text in logs.items()})

    normal = phases['normal']
    assert normal['keypoints'] >= 40 and normal['poses'] > 20 and normal['joints'] > 20
    assert normal['joint_names'] == [
        'head_yaw',
        'head_pitch',
        'left_shoulder',
        'right_shoulder',
        'left_elbow',
        'right_elbow',
    ]
    assert normal['within_limits']
    assert abs(normal['first_u'] - 0.9) < 0.03  # the facilitator starts at its seat
    assert {'group', 'facilitator', 'facilitator_uncertainty'} <= set(normal['marker_ns'])
    assert (
        normal['spread_len'] == 13 and normal['spread_max'] > 0
    )  # 4 sampled plans: a real uncertainty

    bad = phases['bad_input']['results']
    for name, result in bad.items():
        assert result['served_next'], (name, result)
        assert result['planned_from_good'] > 0, (name, result)
    assert (
        bad['nan_inf']['output_people'] == 3
    )  # bad joints dropped; person 1 had no finite joint left
    assert bad['unknown_fields']['output_people'] == 4
    assert bad['no_people']['output_people'] == 0
    assert 0 < bad['twenty_people']['output_people'] <= 16  # max_people
    for name in ('missing_field', 'truncated', 'unknown_datatype', 'big_endian'):
        assert bad[name]['output_people'] is None, name
    kp_log = logs['keypoints_node']
    assert "lacks fields ['v']" in kp_log and 'holds' in kp_log and 'unknown datatype 42' in kp_log
    assert 'big-endian' in kp_log

    jump = phases['time_jump']
    assert jump['back_served'] and jump['poses'] > 0
    assert jump['policy_resets'] > jump['resets_before'] and jump['keypoint_resets'] >= 1
    assert 'jumped back' in logs['policy_node'] and 'jumped back' in kp_log

    model = phases['model_files']
    assert model['deactivate'] and model['cleanup']
    assert (
        not model['configure_missing']
        and not model['configure_corrupt']
        and not model['configure_mismatched']
    )
    assert model['state_after_failures'] == 'unconfigured'
    assert model['configure_restored'] and model['activate'] and model['poses_after_restore'] > 0
    policy_log = logs['policy_node']
    assert 'not found' in policy_log and 'not a readable safetensors' in policy_log
    assert 'does not match' in policy_log

    nan_model = phases['non_finite_model']
    if nan_model['configured']:  # else model-config validation refused it at configure
        # Every plan refused: the start pose is held, and nothing non-finite goes out.
        assert nan_model['activated'] and nan_model['refused'] > 0, nan_model
        assert nan_model['poses'] > 10 and nan_model['finite'], nan_model
        assert 'non-finite plan' in policy_log
    params = phases['parameters']
    for case, (ok, reason) in params['refused'].items():
        assert not ok and reason, case  # refused, with a reason
    assert 'flow policy samples with euler' in params['refused']['sampler=ddim'][1]
    assert all(params['accepted'].values()) and params['activated'] and params['poses'] > 0
    assert params['reset']

    slow = phases['slow_policy']
    assert slow['set_ok'] and slow['activated']
    # Planning is far slower than the 30 Hz input: observations are dropped (the queue holds one),
    # and the control loop keeps publishing between plans instead of waiting for them.
    assert slow['dropped'] > 30
    assert slow['plans'] >= 1 and slow['poses'] >= 3 * slow['plans']
