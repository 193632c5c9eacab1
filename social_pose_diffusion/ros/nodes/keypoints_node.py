"""keypoints_node: 360 degree camera frames (or a detector's keypoints) -> group keypoints.

Subscribes to ``<image_topic>`` (sensor_msgs/Image) or ``<image_topic>/compressed``
(sensor_msgs/CompressedImage) with sensor-data QoS, or to an external
detector's keypoint cloud, and publishes ``/humans/keypoints``
(sensor_msgs/PointCloud2, layout in :mod:`social_pose_diffusion.keypoint_cloud`)
stamped with the input's header. Only the newest input is processed. Camera
frames are taken only while the perception worker is idle (an
:class:`~social_pose_diffusion.ros.common.IdleGate`, keep last 1): frames
published meanwhile are replaced in the middleware, never copied into Python,
and counted as dropped from the camera's sequence numbers. An external
detector's keypoints are small: each is taken, and one that arrives while the
worker is busy replaces the waiting one and is counted as dropped.
"""

import time

from rclpy.node import Node
from sensor_msgs.msg import PointCloud2

from social_pose_diffusion.core.frames import single_person
from social_pose_diffusion.msgs.images import message_to_bgr
from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame, frame_to_cloud, stamp_ns
from social_pose_diffusion.msgs.topics import GROUP_TOPIC, OBSERVED_TOPIC
from social_pose_diffusion.perception import identify_facilitator, make_extractor
from social_pose_diffusion.ros.common import (
    ERROR,
    OK,
    STATE_QOS,
    WARN,
    Diagnostics,
    IdleGate,
    Reporter,
    SequenceGaps,
    Stats,
    Worker,
    camera_subscription,
    relative,
    run_node,
    sensor_qos,
)
from social_pose_diffusion.ros.messages import RCLPY
from social_pose_diffusion.ros.params import KEYPOINTS, Parameters


class KeypointsNode(Node):
    def __init__(self):
        super().__init__('keypoints_node')
        self.params = p = Parameters(
            self, KEYPOINTS, on_change=lambda changed: self._diagnostics.apply(changed)
        )
        if p['input'] == 'image':
            self._extractor = make_extractor(
                p['backend'],
                max_people=p['max_people'],
                min_confidence=p['min_confidence'],
                track_confidence=p['track_confidence'],
                discovery_period=p['discovery_period'],
                budget_ms=p['budget_ms'],
                max_staleness_ms=p['max_staleness_ms'],
                flow=p['flow'],
                hold_s=p['hold_s'],
            )
        else:
            self._extractor = make_extractor('external', max_people=p['max_people'])
        self._stats = Stats()
        self._report = Reporter(self.get_logger())
        self._last_stamp = None
        self._pub = self.create_publisher(PointCloud2, relative(GROUP_TOPIC), STATE_QOS)
        self._observed_pub = self.create_publisher(
            PointCloud2, relative(OBSERVED_TOPIC), STATE_QOS
        )
        self._worker = Worker('perception', self._handle, self._on_worker_error)
        self._worker.start()
        if p['input'] == 'keypoints':
            self._gate = None
            self._sub = self.create_subscription(
                PointCloud2, p['external_topic'], self._on_input, STATE_QOS
            )
        else:
            self._gate, self._gaps = IdleGate(self), SequenceGaps()
            self._sub = camera_subscription(
                self,
                p['image_topic'],
                p['image_transport'],
                self._on_frame,
                sensor_qos(p['image_reliability'], depth=1),
                callback_group=self._gate,
            )
        self._diagnostics = Diagnostics(self, self._status)
        self.get_logger().info(
            f'{p["input"]} input on {self._sub.topic} ({self._sub.msg_type.__name__}), '
            f'output on {self._pub.topic_name}'
        )

    def _on_input(self, msg):
        self._stats.event('input')
        if self._worker.put(msg):
            self._stats.count('dropped (busy)')

    def _on_frame(self, msg, info):
        """A camera frame, taken while the worker is idle: it goes to the worker."""
        skipped = self._gaps(info)
        self._stats.event('input', 1 + skipped)
        if skipped:
            self._stats.count('dropped (busy)', skipped)
        self._gate.close()
        self._worker.put(msg)

    def _handle(self, msg):
        try:
            self._process(msg)
        finally:
            if self._gate is not None:
                self._gate.open()

    def _on_worker_error(self, exc):
        self._stats.count('perception errors')
        self.get_logger().error(f'unexpected error handling an input: {type(exc).__name__}: {exc}')

    def _process(self, msg):
        stamp = stamp_ns(msg)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            if stamp == self._last_stamp:
                self._stats.count('dropped (repeated stamp)')
                self._report('stamp', f'dropped an input repeating stamp {stamp * 1e-9:.3f} s')
                return
            # A looping bag or a restarted driver: trackers and MediaPipe need increasing time.
            back = (self._last_stamp - stamp) * 1e-9
            self._report(
                'jump',
                f'input time jumped back by {back:.3f} s; resetting perception state',
                'warning',
            )
            self._extractor.reset()
            self._stats.count('time resets')
        start = time.perf_counter()
        try:
            if isinstance(msg, PointCloud2):
                frame = self._extractor.process_keypoints(cloud_to_frame(msg))
            else:
                bgr = message_to_bgr(msg, self.params['max_image_pixels'])
                height, width = bgr.shape[:2]
                if self.params['require_equirect'] and abs(width - 2 * height) > 0.02 * width:
                    raise ValueError(f'{width}x{height} is not a 2:1 equirectangular frame')
                frame = self._extractor.process(bgr, stamp)
        except ValueError as exc:  # PerceptionError and codec errors are ValueErrors
            self._stats.count('rejected inputs')
            self._report('input', f'rejected input stamped {stamp * 1e-9:.3f} s: {exc}', 'error')
            return
        except Exception as exc:  # keep serving: one bad frame must not end the node
            self._stats.count('perception errors')
            self._report(
                'crash',
                f'perception failed on input stamped {stamp * 1e-9:.3f} s: '
                f'{type(exc).__name__}: {exc}',
                'error',
            )
            return
        self._last_stamp = stamp
        frame.stamp_ns = stamp
        header = msg.header
        if self.params['frame_id']:
            header.frame_id = self.params['frame_id']
        if self.params['facilitator_seat_u'] >= 0.0:
            frame, facilitator = identify_facilitator(
                frame, seat_u=self.params['facilitator_seat_u']
            )
            if facilitator is not None:
                self._observed_pub.publish(
                    frame_to_cloud(single_person(stamp, facilitator), header, RCLPY)
                )
        self._pub.publish(frame_to_cloud(frame, header, RCLPY))
        self._stats.duration('processing', time.perf_counter() - start)
        self._stats.event('output')
        self._stats.count('published')
        self._stats.set('people (last frame)', len(frame))

    def _status(self):
        counters = self._stats.counters
        level, message = OK, 'ok'
        if counters.get('rejected inputs', 0) or counters.get('perception errors', 0):
            level, message = WARN, 'some inputs were rejected'
        if self._stats.rate('input') == 0.0:
            level, message = WARN, 'no input'
        if self._worker.failed():
            level, message = ERROR, 'perception worker stopped'
        values = self._stats.key_values(
            rates=(('input', 'input rate'), ('output', 'output rate')),
            durations=(('processing', 'processing time'),),
        )
        return level, message, values

    def shutdown(self):
        self._worker.stop(timeout=2.0)


def main(args=None):
    run_node(KeypointsNode, args)


if __name__ == '__main__':
    main()
