"""Real DDS between processes.

A camera-sized sensor_msgs/Image goes from a publisher to a subscriber.
"""

import hashlib

import numpy as np
import pytest

pytestmark = [pytest.mark.ros]

WIDTH, HEIGHT = 1920, 960

PUBLISHER = f"""
import time, numpy as np, rclpy
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('camera_pub')
pub = node.create_publisher(Image, '/camera/image_raw', 10)
deadline = time.time() + 30
while pub.get_subscription_count() == 0 and time.time() < deadline:
    rclpy.spin_once(node, timeout_sec=0.1)
pixels = (np.arange({WIDTH} * {HEIGHT} * 3) % 251).astype(np.uint8)
msg = Image(height={HEIGHT}, width={WIDTH}, encoding='bgr8', step={WIDTH} * 3)
msg.header.frame_id = 'camera'
msg.data = pixels.tobytes()
for i in range(40):
    msg.header.stamp.sec = i
    pub.publish(msg)
    time.sleep(0.1)
"""

SUBSCRIBER = """
import hashlib, rclpy
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('camera_sub')
got = []
node.create_subscription(Image, '/camera/image_raw', got.append, 10)
while not got:
    rclpy.spin_once(node, timeout_sec=0.5)
msg = got[0]
print(
    'RECEIVED', msg.width, msg.height, msg.encoding, msg.header.frame_id,
    hashlib.sha1(bytes(msg.data)).hexdigest(), flush=True,
)
"""


def test_camera_image_crosses_dds_between_processes(run_python):
    sub = run_python(SUBSCRIBER)
    pub = run_python(PUBLISHER)
    out, _ = sub.communicate(timeout=60)
    pub.kill()
    line = next(line for line in out.splitlines() if line.startswith('RECEIVED'))
    _, width, height, encoding, frame_id, digest = line.split()
    expected = hashlib.sha1(
        (np.arange(WIDTH * HEIGHT * 3) % 251).astype(np.uint8).tobytes()
    ).hexdigest()
    assert (int(width), int(height), encoding, frame_id) == (WIDTH, HEIGHT, 'bgr8', 'camera')
    assert digest == expected
