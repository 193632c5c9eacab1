"""`social-pose evaluate --replay`: a simulated session bag played through the whole graph.

The graph (camera -> perception -> policy -> retargeting/markers) runs in
separate processes over DDS; its outputs are recorded and scored.
"""

import json
import math
from pathlib import Path

import pytest

from social_pose_diffusion.sources.bags import read_messages, topic_counts
from social_pose_diffusion.sources.sim import simulate, write_session_bag

pytestmark = [pytest.mark.ros, pytest.mark.mediapipe, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def test_replay_evaluation_scores_the_graph_outputs(run_python, tmp_path):
    bag = tmp_path / 'session'
    write_session_bag(simulate('musician', 3, 5.0, 30.0, 5), bag, progress=False)
    report_path = tmp_path / 'replay.json'
    proc = run_python(
        module='social_pose_diffusion.cli',
        args=['evaluate', '--replay', str(bag), '--report', str(report_path)],
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-4000:]
    report = json.loads(report_path.read_text())

    assert report['input'] == 'compressed'  # simulated bags hold the jpeg stream
    assert 'simulated time' in report['mode']
    assert all(report['nodes_alive'].values())
    assert report['frames_published'] == 150
    assert 0 < report['keypoint_frames_received'] <= 150
    assert report['dropped_frames'] == 150 - report['keypoint_frames_received']
    # Poses start with the first plan (after MediaPipe's first full scan), then come at the
    # control rate.
    assert report['poses_received'] > 10 and report['poses_scored'] > 10
    assert math.isfinite(report['mpjpe']) and 0 <= report['mpjpe'] < 0.5
    latency = report['latency_ms']
    # the first plans wait for MediaPipe's first full scan: the mean may exceed the p95
    assert 0 < latency['mean_ms'] <= latency['max_ms']
    assert 0 < latency['p95_ms'] <= latency['max_ms']
    # The control loop runs on simulated time at its period whatever perception does.
    assert 25.0 <= report['control_interval_ms']['median'] <= 45.0
    assert {'/keypoints_node', '/policy_node', '/retarget_node'} <= set(report['diagnostics'])

    outputs = topic_counts(report['output_bag'])
    # /facilitator/observed: the seated facilitator the camera sees, split off the group by
    # its seat.
    for topic in (
        '/facilitator/pose',
        '/humans/keypoints',
        '/facilitator/joint_states',
        '/diagnostics',
        '/facilitator/ground_truth',
        '/facilitator/observed',
    ):
        assert outputs.get(topic, (None, 0))[1] > 0, (topic, outputs)
    names = next(
        msg.name
        for _, _, msg in read_messages(report['output_bag'], ['/facilitator/joint_states'])
    )
    assert list(names) == [
        'head_yaw',
        'head_pitch',
        'left_shoulder',
        'right_shoulder',
        'left_elbow',
        'right_elbow',
    ]


def test_policy_node_serves_a_raw_frame_policy(run_python, tmp_path):
    """The paper's raw-frame observation.

    The policy node also subscribes to the camera (untrained weights).
    """
    from social_pose_diffusion.policy import Policy, PolicyConfig

    default = json.loads((ROOT / 'models' / 'default.json').read_text())
    config = PolicyConfig(
        encoder='raw',
        policy='flow',
        neutral_pose=default['neutral_pose'],
        max_speed=default['max_speed'],
    )
    Policy(config).save(tmp_path / 'raw.safetensors')
    bag = tmp_path / 'session'
    # 6 s: the first camera frame's full discovery alone can take 3-4 s on a loaded 2-core machine
    write_session_bag(simulate('teacher', 3, 6.0, 30.0, 6), bag, progress=False)
    code = (
        'import json; from social_pose_diffusion.ros.replay import replay; '
        f'r = replay({str(bag)!r}, model={str(tmp_path / "raw")!r}, '
        f'log_dir={str(tmp_path / "logs")!r}, '
        'progress=False); print("REPORT" + json.dumps(r))'
    )
    out, _ = run_python(code=code).communicate(timeout=300)
    line = [x for x in out.splitlines() if x.startswith('REPORT')]
    assert line, out[-4000:]
    report = json.loads(line[0][6:])
    assert all(report['nodes_alive'].values()) and report['frames_reaching_a_pose'] > 0
    assert 'raw encoder' in (tmp_path / 'logs' / 'policy_node.log').read_text()
