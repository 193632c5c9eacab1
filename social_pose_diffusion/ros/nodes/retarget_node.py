"""retarget_node: the generated facilitator pose -> sensor_msgs/JointState of a simple upper body.

Reference consumer for a robot or virtual agent: joints, axes and limits are
those of :mod:`social_pose_diffusion.retarget` and ``config/facilitator.urdf``,
so ``robot_state_publisher`` and rviz show the body directly.
"""

import time

from rclpy.node import Node
from sensor_msgs.msg import JointState, PointCloud2

from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame, stamp_ns
from social_pose_diffusion.msgs.topics import JOINT_STATES_TOPIC, POSE_TOPIC
from social_pose_diffusion.retarget import joints
from social_pose_diffusion.ros.common import (
    OK,
    STATE_QOS,
    WARN,
    Diagnostics,
    Reporter,
    Stats,
    relative,
    run_node,
)
from social_pose_diffusion.ros.params import RETARGET, Parameters


class RetargetNode(Node):
    def __init__(self):
        super().__init__('retarget_node')
        self.params = Parameters(self, RETARGET, on_change=self._apply)
        self._stats = Stats()
        self._report = Reporter(self.get_logger())
        self._previous = self._previous_stamp = None
        self._pub = self.create_publisher(JointState, relative(JOINT_STATES_TOPIC), 10)
        self.create_subscription(PointCloud2, relative(POSE_TOPIC), self._on_pose, STATE_QOS)
        self._diagnostics = Diagnostics(self, self._status)
        self._apply({'joint_prefix'})

    def _apply(self, changed):
        """Every parameter applies live: joint names at the next pose, the timer now."""
        if 'joint_prefix' in changed:
            self._names = [self.params['joint_prefix'] + n for n in joints.JOINT_NAMES]
        self._diagnostics.apply(changed)

    def _on_pose(self, msg):
        start = time.perf_counter()
        self._stats.event('input')
        stamp = stamp_ns(msg)
        try:
            frame = cloud_to_frame(msg)
            if not len(frame):
                raise ValueError('the pose message holds no facilitator')
            angles, clipped = joints.clamp(joints.joint_angles(frame.keypoints[0]))
        except ValueError as exc:
            self._stats.count('rejected poses')
            self._report('input', f'rejected facilitator pose: {exc}', 'error')
            return
        if clipped:
            self._stats.count('clamped joint values', len(clipped))
        if self._previous_stamp is not None and stamp < self._previous_stamp:
            self._previous = None  # time went back (looping bag): no speed limit across the jump
        dt = 0.0 if self._previous_stamp is None else (stamp - self._previous_stamp) * 1e-9
        angles = joints.limit_velocity(self._previous, angles, self.params['max_velocity'], dt)
        self._previous, self._previous_stamp = angles, stamp
        out = JointState(name=self._names, position=[angles[n] for n in joints.JOINT_NAMES])
        out.header.stamp = msg.header.stamp
        self._pub.publish(out)
        self._stats.duration('processing', time.perf_counter() - start)

    def _status(self):
        level, message = OK, 'ok'
        if self._stats.rate('input') == 0:
            level, message = WARN, 'no facilitator pose input'
        values = self._stats.key_values(
            rates=(('input', 'input rate'),), durations=(('processing', 'processing time'),)
        )
        return level, message, values


def main(args=None):
    run_node(RetargetNode, args)


if __name__ == '__main__':
    main()
