"""visualizer_node: group and facilitator skeletons as visualization_msgs/MarkerArray for rviz.

Keypoints are placed on a sphere of ``radius`` metres around the camera frame
(REP-103: x forward, y left, z up). Group members are drawn in blue, the
generated facilitator in orange with a translucent sphere per joint whose
diameter shows that joint's uncertainty (the plan spread). Marker ids follow
``person_id * 100 + k``.
"""

from functools import partial

import numpy as np
from geometry_msgs.msg import Point
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from social_pose_diffusion.core.skeleton import BONES, unit_sphere
from social_pose_diffusion.msgs.keypoint_cloud import cloud_field, cloud_to_frame
from social_pose_diffusion.msgs.topics import GROUP_TOPIC, MARKERS_TOPIC, POSE_TOPIC
from social_pose_diffusion.ros.common import STATE_QOS, Reporter, relative, run_node
from social_pose_diffusion.ros.params import VISUALIZER, Parameters


class VisualizerNode(Node):
    def __init__(self):
        super().__init__('visualizer_node')
        self.params = Parameters(self, VISUALIZER)
        self._report = Reporter(self.get_logger())
        self._last = {}
        self._pub = self.create_publisher(MarkerArray, relative(MARKERS_TOPIC), 5)
        for topic, kind in ((GROUP_TOPIC, 'group'), (POSE_TOPIC, 'facilitator')):
            self.create_subscription(
                PointCloud2, relative(topic), partial(self._on_cloud, kind=kind), STATE_QOS
            )

    def _on_cloud(self, msg, kind):
        now = self.get_clock().now()
        last = self._last.get(kind)
        if last is not None and 0 <= (now - last).nanoseconds < 1e9 / self.params['max_rate']:
            return
        self._last[kind] = now
        try:
            frame = cloud_to_frame(msg)
        except ValueError as exc:
            self._report(kind, f'cannot draw {kind} cloud: {exc}', 'error')
            return
        color = self.params['group_color' if kind == 'group' else 'facilitator_color']
        markers = []
        for n, pid in enumerate(frame.ids):
            markers += self._skeleton(msg.header, kind, int(pid), frame.keypoints[n], color)
        if kind == 'facilitator' and len(frame):
            spread = cloud_field(msg, 'spread')
            if spread is not None and len(spread) == frame.keypoints.shape[1]:
                markers += self._uncertainty(msg.header, frame.keypoints[0], spread, color)
        self._pub.publish(MarkerArray(markers=markers))

    def _marker(self, header, ns, mid, kind, scale, color):
        m = Marker(header=header, ns=ns, id=mid, type=kind, action=Marker.ADD)
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = scale
        m.color = ColorRGBA(**{c: float(v) for c, v in zip('rgba', color)})
        m.lifetime = Duration(seconds=self.params['lifetime']).to_msg()
        return m

    def _skeleton(self, header, ns, pid, keypoints, color):
        xyz = unit_sphere(keypoints[:, :2]) * self.params['radius']
        seen = keypoints[:, 2] >= self.params['min_confidence']
        points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in xyz]
        joints = self._marker(header, ns, pid * 100, Marker.SPHERE_LIST, 0.04, color)
        joints.points = [points[j] for j in np.flatnonzero(seen)]
        bones = self._marker(header, ns, pid * 100 + 1, Marker.LINE_LIST, 0.015, color)
        bones.points = [points[j] for a, b in BONES if seen[a] and seen[b] for j in (a, b)]
        return [joints, bones]

    def _uncertainty(self, header, keypoints, spread, color):
        xyz = unit_sphere(keypoints[:, :2]) * self.params['radius']
        halo = list(color[:3]) + [0.25]
        markers = []
        for j, (p, s) in enumerate(zip(xyz, spread)):
            # spread is in normalised equirect units; pi * spread is roughly the angle it spans.
            m = self._marker(
                header,
                'facilitator_uncertainty',
                j,
                Marker.SPHERE,
                max(0.02, float(2 * np.pi * s * self.params['radius'])),
                halo,
            )
            m.pose.position = Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
            markers.append(m)
        return markers


def main(args=None):
    run_node(VisualizerNode, args)


if __name__ == '__main__':
    main()
