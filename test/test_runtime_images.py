"""keypoints_node on camera frames over real DDS: other encodings, inconsistent, truncated or too
large images, empty and non-2:1 frames, a time jump back; after each the node keeps serving the
next good frame."""

import json

import pytest

from social_pose_diffusion.ros.launcher import Graph

pytestmark = [pytest.mark.ros, pytest.mark.mediapipe]


def driver():
    """Runs in a child process: one JSON line per case."""
    import time

    import cv2
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image, PointCloud2

    from social_pose_diffusion.msgs.images import bgr_to_image
    from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame, stamp_ns
    from social_pose_diffusion.ros.common import STATE_QOS, sensor_qos
    from social_pose_diffusion.ros.launcher import large_message_env
    from social_pose_diffusion.ros.messages import RCLPY
    from social_pose_diffusion.sources.sim import Renderer, simulate

    large_message_env()  # raw 960x480 frames through shared memory (config/fastdds.xml)
    rclpy.init()
    node = rclpy.create_node('image_driver')
    outputs = {}
    node.create_subscription(
        PointCloud2,
        '/humans/keypoints',
        lambda m: outputs.setdefault(stamp_ns(m), len(cloud_to_frame(m))),
        STATE_QOS,
    )
    pub = node.create_publisher(Image, '/camera/image_raw', sensor_qos('reliable'))
    session = simulate('teacher', 4, 2.0, 30.0, 1)
    renderer = Renderer(session, 960, 480, seed=1)
    frames = [renderer.frame(t) for t in range(0, 60, 6)]

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)

    def send(msg, stamp):
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        pub.publish(msg)

    def wait_for(stamp, timeout=40.0):
        end = time.monotonic() + timeout
        while stamp not in outputs and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
        return stamp in outputs

    def image(pixels, encoding):
        return bgr_to_image(pixels, RCLPY.header(0), RCLPY, encoding=encoding)

    def uyvy(bgr):
        yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).astype(np.int32)
        y, u, v = yuv[..., 0], yuv[..., 1], yuv[..., 2]
        out = np.empty((bgr.shape[0], bgr.shape[1], 2), np.uint8)
        out[:, 0::2, 0] = (u[:, 0::2] + u[:, 1::2]) // 2
        out[:, 1::2, 0] = (v[:, 0::2] + v[:, 1::2]) // 2
        out[..., 1] = y
        return out

    start = time.monotonic()
    while pub.get_subscription_count() == 0 and time.monotonic() - start < 120:
        spin(0.1)
    good = frames[0]
    gray = cv2.cvtColor(good, cv2.COLOR_BGR2GRAY)

    def truncated():
        msg = image(good, 'bgr8')
        msg.data = bytes(msg.data)[: len(msg.data) // 2]
        return msg

    def wrong_size():
        msg = image(cv2.resize(good, (480, 240)), 'bgr8')
        msg.width, msg.height, msg.step = 960, 480, 960 * 3
        return msg

    def short_step():
        msg = image(good, 'bgr8')
        msg.step = 100
        return msg

    def padded_step():
        msg = image(np.pad(good, ((0, 0), (0, 8), (0, 0))), 'bgr8')  # rows of 968 pixels, 960 used
        msg.width = 960
        return msg

    def empty():
        msg = Image(encoding='bgr8')
        return msg

    def too_large():  # declares 200 MP (over max_image_pixels) in a few bytes
        msg = image(good[:4, :4], 'bgr8')
        msg.width, msg.height, msg.step = 20000, 10000, 60000
        return msg

    cases = {
        'rgb8': lambda: image(cv2.cvtColor(good, cv2.COLOR_BGR2RGB), 'rgb8'),
        'mono8': lambda: image(gray, 'mono8'),
        'bgra8': lambda: image(cv2.cvtColor(good, cv2.COLOR_BGR2BGRA), 'bgra8'),
        '16UC1': lambda: image(gray.astype(np.uint16) * 257, '16UC1'),
        'yuv422': lambda: image(uyvy(good), 'yuv422'),
        'unknown_encoding': lambda: image(good, 'weird_encoding'),
        'truncated': truncated,
        'size_mismatch': wrong_size,
        'short_step': short_step,
        'empty': empty,
        'not_2_to_1': lambda: image(cv2.resize(good, (960, 960)), 'bgr8'),
        'padded_step': padded_step,
        'too_large': too_large,
    }
    stamp = time.time_ns()
    ready = wait_for(stamp) if send(image(good, 'bgr8'), stamp) is None else False
    print(
        'CASE ' + json.dumps({'case': 'first', 'served': ready, 'people': outputs.get(stamp)}),
        flush=True,
    )
    for k, (name, make) in enumerate(cases.items()):
        case_stamp = time.time_ns()
        send(make(), case_stamp)
        spin(0.3)
        good_stamp = time.time_ns()
        send(image(frames[(k + 1) % len(frames)], 'bgr8'), good_stamp)
        served = wait_for(good_stamp)
        print(
            'CASE '
            + json.dumps(
                {
                    'case': name,
                    'output': case_stamp in outputs,
                    'people': outputs.get(case_stamp),
                    'served_next': served,
                }
            ),
            flush=True,
        )
    # Time jumps back (a looping bag): the frame is processed after a perception reset.
    back = time.time_ns() - 30_000_000_000
    send(image(good, 'bgr8'), back)
    served_back = wait_for(back)
    later = time.time_ns()
    send(image(frames[1], 'bgr8'), later)
    print(
        'CASE '
        + json.dumps({'case': 'time_jump', 'output': served_back, 'served_next': wait_for(later)}),
        flush=True,
    )
    node.destroy_node()
    rclpy.shutdown()


def test_keypoints_node_rejects_bad_images_and_keeps_serving(ros_env, run_python, tmp_path):
    with Graph(nodes=['keypoints_node'], env=ros_env, log_dir=tmp_path / 'logs') as graph:
        proc = run_python(call=('test_runtime_images.driver',))
        out, _ = proc.communicate(timeout=240)
        alive = graph.alive()
        log = graph.log('keypoints_node')
    print(out)
    cases = {
        c['case']: c
        for c in (json.loads(line[5:]) for line in out.splitlines() if line.startswith('CASE '))
    }
    assert cases.get('first', {}).get('served'), out[-3000:] + log[-3000:]
    assert alive['keypoints_node'], log[-3000:]
    for name, case in cases.items():
        assert case.get('served_next', True), (name, case)
    # Encodings a camera driver may send are converted and processed like bgr8.
    for name in ('rgb8', 'mono8', 'bgra8', '16UC1', 'yuv422', 'padded_step'):
        assert cases[name]['output'], name
    for name in (
        'unknown_encoding',
        'truncated',
        'size_mismatch',
        'short_step',
        'empty',
        'not_2_to_1',
        'too_large',
    ):
        assert not cases[name]['output'], name
    assert cases['time_jump']['output'] and cases['time_jump']['served_next']
    for text in (
        "unsupported image encoding 'weird_encoding'",
        'needs',
        'shorter than a row',
        'empty image',
        'not a 2:1 equirectangular frame',
        'jumped back',
        'exceeds the limit of 40000000',
    ):
        assert text in log, text
