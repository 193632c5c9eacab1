"""policy_node (lifecycle): group keypoints -> the generated facilitator pose at a fixed rate.

ROS glue around :class:`~social_pose_diffusion.planning.follower.Controller`: a
planner thread plans from the newest ``/humans/keypoints`` frame, a control
loop on the node's clock publishes what the follower executes now on
``/facilitator/pose`` (with ``publish_on_plan`` a new plan at once, restarting
the period). Configure checks the facilitator's start and loads the model,
activate warms the agent up and starts the loops; failures leave the node in
its state with a clear error. Parameters: :data:`~social_pose_diffusion.ros.params.POLICY`.
"""

import threading
import time
from functools import partial

import numpy as np
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image, PointCloud2

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.resources import default_model
from social_pose_diffusion.msgs.images import message_to_bgr
from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame, facilitator_cloud
from social_pose_diffusion.msgs.topics import GROUP_TOPIC, OBSERVED_TOPIC, POSE_TOPIC
from social_pose_diffusion.planning.agent import FacilitatorAgent, seated
from social_pose_diffusion.planning.follower import Controller
from social_pose_diffusion.ros.common import (
    ERROR,
    OK,
    STATE_QOS,
    WARN,
    Diagnostics,
    Reporter,
    Stats,
    Worker,
    relative,
    run_node,
    sensor_qos,
)
from social_pose_diffusion.ros.messages import RCLPY
from social_pose_diffusion.ros.params import POLICY, Parameters, unknown_start

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class PolicyNode(LifecycleNode):
    def __init__(self):
        super().__init__('policy_node')
        self._policy = self._timer = None
        self._observed = self._image = self._pose_pub = None
        self.params = Parameters(
            self,
            POLICY,
            extra_check=self._check,
            on_change=lambda changed: self._diagnostics.apply(changed),
        )
        self._stats, self._report = Stats(), Reporter(self.get_logger())
        self._lock = threading.Lock()
        self._planner = Worker('planner', lambda item: self._plan_once(*item), self._failed)
        self._control, self._subs, self._label = Controller(self._start_pose), [], 'unconfigured'
        self._diagnostics = Diagnostics(self, self._status)

    def _check(self, name, value):
        """Rules that depend on the loaded model or on another parameter."""
        if self._policy is None:  # checked at configure
            return None
        family = self._policy.config.family
        if name == 'sampler' and value and value not in family.samplers:
            return (
                f'a {family.name} policy samples with {", ".join(family.samplers)}, not {value!r}'
            )
        return unknown_start(self.params, name, value)

    # -- lifecycle ---------------------------------------------------------
    def on_configure(self, state):
        from social_pose_diffusion.policy import load_policy

        p = self.params
        path = p['model_path'] or str(default_model())
        try:
            if unknown_start(p):
                raise ValueError(unknown_start(p))
            if p['torch_threads'] > 0:
                import torch

                torch.set_num_threads(p['torch_threads'])
            start = time.perf_counter()
            self._policy = load_policy(path, device=p['device'])
            if self._check('sampler', p['sampler']):
                raise ValueError(f'sampler: {self._check("sampler", p["sampler"])}')
        except Exception as exc:  # ModelError is a ValueError; anything else names its type
            self._policy = None
            kind = '' if isinstance(exc, ValueError) else f'{type(exc).__name__}: '
            self.get_logger().error(f'configure failed, node stays unconfigured: {kind}{exc}')
            return FAILURE
        c = self._policy.config
        self.get_logger().info(
            f'loaded {path}: {c.policy}/{c.sampler} {c.encoder} encoder, '
            f'horizon {c.horizon}, on {self._policy.device} in '
            f'{time.perf_counter() - start:.2f} s'
        )
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
        if c.encoder_spec.needs_camera:  # raw-frame observation: keep the newest camera frame
            compressed = p['image_transport'] == 'compressed'
            self._subs.append(
                self.create_subscription(
                    CompressedImage if compressed else Image,
                    p['image_topic'] + ('/compressed' if compressed else ''),
                    partial(setattr, self, '_image'),
                    sensor_qos(),
                )
            )  # decoded when a plan needs it
        return SUCCESS

    def on_activate(self, state):
        try:  # the first inference pays for allocations and kernel selection
            agent = FacilitatorAgent(self._policy, fps=self._policy.config.fps)
            start = time.perf_counter()
            raw = self._policy.config.encoder_spec.needs_camera
            agent.plan(GroupFrame(0), image=np.zeros((480, 960, 3), np.uint8) if raw else None)
        except Exception as exc:
            self.get_logger().error(
                f'activate failed in the warm-up inference: {type(exc).__name__}: {exc}'
            )
            return FAILURE
        took = time.perf_counter() - start
        self.get_logger().info(f'warm-up inference took {1e3 * took:.0f} ms')
        self._control.start(agent, 1e9 / self.params['control_rate'])
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
        self._subs, self._pose_pub, self._policy = [], None, None
        return SUCCESS

    def on_shutdown(self, state):
        self._stop('finalized')
        return SUCCESS

    def on_error(self, state):
        self._stop('unconfigured')
        self._policy = None
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
        self._control.stop()
        if self._policy is not None and self._policy.device.type == 'cuda':
            import torch

            torch.cuda.empty_cache()  # the agent's memory goes back to other processes

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
        back = self._control.observed(frame.stamp_ns)
        if back:  # a looping bag or a restarted driver: the state belongs to another timeline
            self._report(
                'jump',
                f'observation time jumped back by {back:.3f} s; resetting the facilitator state',
                'warning',
            )
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
        p, agent, image = self.params, self._control.agent, None
        if agent is None:
            return
        agent.samples, agent.sampler = p['samples'], p['sampler'] or None
        agent.steps = p['steps'] or None
        agent.reanchor_weight = p['reanchor']
        if self._policy.config.encoder_spec.needs_camera:
            if self._image is None:
                return self._report('image', 'waiting for a camera frame: the policy sees them')
            image = message_to_bgr(self._image)
        began = time.perf_counter()
        status = self._control.plan(
            frame,
            arrival,
            p['max_clock_offset'] * 1e9,
            image=image,
            observed=self._observed if p['reanchor'] > 0 else None,
        )
        if status in ('waiting', 'stale'):
            return
        self._stats.duration('planning', time.perf_counter() - began)
        self._stats.event('plan')
        self._stats.count('plans')
        if status == 'refused':
            return self._report(
                'finite', 'refused a non-finite plan: holding the last good pose', 'error'
            )
        if status == 'by arrival':  # logged once per episode, counted always
            offset = (arrival - frame.stamp_ns) * 1e-9
            self.get_logger().warning(
                f'observation stamps are {offset:.1f} s from the node '
                'clock; timing plans by arrival (use_sim_time for bags?)'
            )
        if p['publish_on_plan']:
            self._publish(early=True)

    # -- control loop and diagnostics ------------------------------------------
    def _publish(self, early=False):
        """Publish what the follower executes now; early (a new plan) restarts the period."""
        with self._lock:
            if self._timer is None:
                return
            now = self.get_clock().now().nanoseconds
            tick, back = self._control.tick(now, early)
            if back:
                self._report(
                    'clock',
                    f'node clock jumped back by {back:.3f} s; resetting the facilitator state',
                    'warning',
                )
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
        for name, value in self._control.counts().items():
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
