"""policy_node (lifecycle): group keypoints -> the generated facilitator pose at a fixed rate.

ROS glue around :class:`~social_pose_diffusion.planning.serving.PolicyServer`: a
planner thread plans from the newest ``/humans/keypoints`` frame, a control
loop on the node's clock publishes what the follower executes now on
``/facilitator/pose`` (with ``publish_on_plan`` a new plan at once, restarting
the period). Configure checks the facilitator's start and loads the model,
activate warms the agent up and starts the loops; failures leave the node in
its state with a clear error. Parameters: :data:`~social_pose_diffusion.ros.params.POLICY`.
"""

import threading
from functools import partial

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from sensor_msgs.msg import PointCloud2

from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame, facilitator_cloud
from social_pose_diffusion.msgs.topics import GROUP_TOPIC, OBSERVED_TOPIC, POSE_TOPIC
from social_pose_diffusion.planning.agent import seated
from social_pose_diffusion.planning.serving import PolicyServer
from social_pose_diffusion.ros.common import (
    ERROR,
    OK,
    STATE_QOS,
    WARN,
    Diagnostics,
    Reporter,
    Stats,
    Worker,
    camera_subscription,
    relative,
    run_node,
    sensor_qos,
)
from social_pose_diffusion.ros.messages import RCLPY
from social_pose_diffusion.ros.params import POLICY, Parameters, agent_options, unknown_start

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class PolicyNode(LifecycleNode):
    def __init__(self):
        super().__init__('policy_node')
        self._timer = self._observed = self._image = self._pose_pub = None
        self._stats, self._report = Stats(), Reporter(self.get_logger())
        self._server, self._subs = PolicyServer(self._start_pose, self._report), []
        self.params = Parameters(
            self,
            POLICY,
            extra_check=self._check,
            on_change=lambda changed: self._diagnostics.apply(changed),
        )
        self._lock = threading.Lock()
        self._planner = Worker('planner', lambda item: self._plan_once(*item), self._failed)
        self._label = 'unconfigured'
        self._diagnostics = Diagnostics(self, self._status)

    def _check(self, name, value):
        """Rules that depend on the loaded model or on another parameter."""
        if self._server.policy is None:  # checked at configure
            return None
        return self._server.problem(name, value) or unknown_start(self.params, name, value)

    # -- lifecycle ---------------------------------------------------------
    def on_configure(self, state):
        p = self.params
        try:
            if unknown_start(p):
                raise ValueError(unknown_start(p))
            loaded = self._server.load(
                p['model_path'],
                p['device'],
                p['torch_threads'],
                sampler=p['sampler'],
                style=p['style'],
            )
        except Exception as exc:  # ModelError is a ValueError; anything else names its type
            kind = '' if isinstance(exc, ValueError) else f'{type(exc).__name__}: '
            self.get_logger().error(f'configure failed, node stays unconfigured: {kind}{exc}')
            return FAILURE
        self.get_logger().info(loaded)
        self._label = 'inactive'
        self._pose_pub = self.create_lifecycle_publisher(
            PointCloud2, relative(POSE_TOPIC), STATE_QOS
        )
        self._subs = [
            self.create_subscription(PointCloud2, topic, callback, STATE_QOS)
            for topic, callback in (
                (relative(GROUP_TOPIC), self._on_keypoints),
                (relative(OBSERVED_TOPIC), self._on_observed),
            )
        ]
        if self._server.needs_camera:  # keep the newest frame; a plan decodes it
            self._subs.append(
                camera_subscription(
                    self,
                    p['image_topic'],
                    p['image_transport'],
                    partial(setattr, self, '_image'),
                    sensor_qos(),
                )
            )
        return SUCCESS

    def on_activate(self, state):
        try:
            took = self._server.start(1e9 / self.params['control_rate'])
        except Exception as exc:
            self.get_logger().error(
                f'activate failed in the warm-up inference: {type(exc).__name__}: {exc}'
            )
            return FAILURE
        self.get_logger().info(f'warm-up inference took {1e3 * took:.0f} ms')
        self._planner.start()
        self._timer = self.create_timer(1.0 / self.params['control_rate'], self._publish)
        self._label = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state):
        self._stop('inactive')
        self.get_logger().info('deactivated: control loop and planner stopped, agent freed')
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self._stop('unconfigured')
        for sub in self._subs:
            self.destroy_subscription(sub)
        if self._pose_pub is not None:
            self.destroy_lifecycle_publisher(self._pose_pub)
        self._subs, self._pose_pub, self._server.policy = [], None, None
        return SUCCESS

    def on_shutdown(self, state):
        self._stop('finalized')
        return SUCCESS

    def on_error(self, state):
        self._stop('unconfigured')
        self._server.policy = None
        return SUCCESS

    def start(self):
        """With ``autostart``, configure and activate at once (as a launch file's events would)."""
        if self.params['autostart'] and self.trigger_configure() == SUCCESS:
            self.trigger_activate()

    def shutdown(self):
        self._stop(self._label)

    def _stop(self, label):
        self._label = label
        with self._lock:  # a plan published early resets the timer under the lock
            timer, self._timer = self._timer, None
        if timer is not None:
            self.destroy_timer(timer)
        self._planner.stop()
        self._server.stop()

    # -- inputs and planning -------------------------------------------------
    def _on_keypoints(self, msg):
        if not self._planner.running:
            return
        self._stats.event('input')
        try:
            frame = cloud_to_frame(msg)
        except ValueError as exc:
            self._stats.count('rejected keypoint messages')
            self._report('input', f'rejected keypoint cloud: {exc}', 'error')
            return
        self._server.observed(frame.stamp_ns)
        if self._planner.put((self.get_clock().now().nanoseconds, frame)):
            self._stats.count('dropped observations (planner busy)')

    def _on_observed(self, msg):
        try:
            person = cloud_to_frame(msg)
        except ValueError:
            return  # the keypoints node checked it; a mismatch keeps the last observed pose
        if len(person):
            self._observed = person.keypoints[0]

    def _start_pose(self, agent):
        """An episode's start: the observed facilitator, else the neutral pose at the seat."""
        if self.params['init_from_observed'] and self._observed is not None:
            return self._observed
        if self.params['facilitator_seat_u'] != -1.0:
            return seated(agent.neutral, self.params['facilitator_seat_u'])
        self._report(
            'start',
            'waiting for /facilitator/observed to place the facilitator '
            '(facilitator_seat_u is -1: unknown)',
        )
        return None

    def _failed(self, exc):
        self._stats.count('planning errors')
        self._report('plan', f'planning failed: {type(exc).__name__}: {exc}', 'error')

    def _plan_once(self, arrival, frame):
        """Plan from the newest observation; publish the plan at once with publish_on_plan."""
        p = self.params
        planned = self._server.plan(
            frame,
            arrival,
            p['max_clock_offset'] * 1e9,
            self._image,
            self._observed,
            **agent_options(p),
        )
        if planned is None:
            return
        self._stats.duration('planning', planned[0])
        self._stats.event('plan')
        self._stats.count('plans')
        if planned[1] and p['publish_on_plan']:
            self._publish(early=True)

    # -- control loop and diagnostics ------------------------------------------
    def _publish(self, early=False):
        """Publish what the follower executes now; early (a new plan) restarts the period."""
        with self._lock:
            if self._timer is None:
                return
            now = self.get_clock().now().nanoseconds
            tick = self._server.tick(now, early)
            if tick is None:
                return
            header = RCLPY.header(now, self.params['frame_id'])
            age = (now - tick.obs_ns) * 1e-9
            self._pose_pub.publish(facilitator_cloud(tick.pose, tick.spread, age, header, RCLPY))
            if early:
                self._timer.reset()
        self._stats.event('control')

    def _status(self):
        level, message = OK, self._label
        if self._label != 'active':
            level, message = WARN, f'{self._label}: not publishing'
        elif self._stats.rate('input') == 0.0:
            level, message = WARN, 'active, no keypoint input'
        if self._planner.failed():
            level, message = ERROR, 'planner thread stopped'
        for name, value in self._server.control.counts().items():
            self._stats.set(name, value)
        values = self._stats.key_values(
            rates=(('input', 'input rate'), ('plan', 'plan rate'), ('control', 'control rate')),
            durations=(('planning', 'policy latency'),),
        )
        values.append(('control rate target (Hz)', f'{self.params["control_rate"]:.1f}'))
        return level, message, values


def main(args=None):
    run_node(PolicyNode, args)


if __name__ == '__main__':
    main()
