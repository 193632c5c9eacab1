"""The keypoints node's camera gate over real DDS: nothing is taken while the worker is busy,
then only the newest frame, and the frames skipped meanwhile are counted."""

import json

import pytest

pytestmark = pytest.mark.ros


def driver():
    """Runs in a child process: one JSON line."""
    import time

    import rclpy
    from sensor_msgs.msg import Image

    from social_pose_diffusion.ros.common import (
        IdleGate,
        SequenceGaps,
        camera_subscription,
        sensor_qos,
    )

    rclpy.init()
    node = rclpy.create_node('gate_driver')
    gate, gaps = IdleGate(node), SequenceGaps()
    taken, skipped = [], []

    def on_frame(msg, info):
        taken.append(msg.header.stamp.sec)
        skipped.append(gaps(info))

    camera_subscription(
        node, '/camera/image_raw', 'raw', on_frame, sensor_qos('reliable', depth=1), gate
    )
    pub = node.create_publisher(Image, '/camera/image_raw', sensor_qos('reliable', depth=10))

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)

    def send(sec):
        msg = Image(encoding='bgr8', height=2, width=4, step=12, data=bytes(24))
        msg.header.stamp.sec = sec
        pub.publish(msg)

    end = time.monotonic() + 10.0
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        spin(0.05)
    send(1)
    spin(0.5)
    out = {'open': list(taken)}
    gate.close()  # the worker took frame 1
    for sec in range(2, 7):
        send(sec)
    spin(0.5)
    out['closed'] = list(taken)
    gate.open()  # the worker is done
    spin(0.5)
    out['reopened'], out['skipped'] = list(taken), list(skipped)
    node.destroy_node()
    rclpy.shutdown()
    print('GATE ' + json.dumps(out), flush=True)


def test_closed_gate_takes_nothing_then_only_the_newest_frame(run_python):
    proc = run_python(call=('test_runtime_gate.driver',))
    out, _ = proc.communicate(timeout=120)
    lines = [json.loads(line[5:]) for line in out.splitlines() if line.startswith('GATE ')]
    assert lines, out[-3000:]
    got = lines[0]
    assert got['open'] == [1]
    assert got['closed'] == [1]  # nothing taken, nothing copied into Python, while closed
    assert got['reopened'] == [1, 6]  # keep last 1: the newest frame, not the oldest waiting
    assert got['skipped'] == [0, 4]  # frames 2-5 were replaced in the middleware


def test_sequence_gaps_count_per_publisher_and_ignore_a_restart():
    from social_pose_diffusion.ros.common import SequenceGaps

    gaps = SequenceGaps()

    def info(seq, gid):
        return {'publication_sequence_number': seq, 'publisher_gid': {'data': gid}}

    counted = [gaps(info(s, g)) for s, g in ((1, b'a'), (5, b'a'), (1, b'b'), (7, b'a'))]
    assert counted == [0, 3, 0, 1]  # publisher b's numbers are its own
    assert gaps(info(2, b'a')) == 0  # a restarted camera starts over
    assert gaps(info(4, b'a')) == 1
    assert gaps({'publication_sequence_number': None}) == 0  # a middleware without numbers


def test_input_rate_counts_the_skipped_frames_noted_at_once():
    import time

    from social_pose_diffusion.ros.common import Stats

    stats = Stats(window=10)
    stats.event('input')
    time.sleep(0.2)
    stats.event('input', 12)  # a frame taken after eleven were skipped: more than the window
    assert 30.0 < stats.rate('input') <= 60.0  # twelve frames in 0.2 s, not a burst at one stamp
