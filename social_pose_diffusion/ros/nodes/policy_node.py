"""policy_node (lifecycle): group keypoints -> the generated facilitator pose at a fixed rate.

A planning thread runs the diffusion policy on the newest group frame
(``/humans/keypoints``) and produces a timestamped plan of the next H poses
(action chunk). A control loop on the node's clock (default 30 Hz) publishes
the plan interpolated at the current time on ``/facilitator/pose``, dropping
entries whose time has passed, and holds the last pose when no plan is left,
so the output rate never depends on the perception or planning rate. A new
plan is published as soon as it is ready and the loop's phase restarts from
it, so a fresh observation never waits up to a control period for its tick.
Policies that observe raw camera frames (the paper's 'raw' encoder) also
subscribe to the camera and plan with the newest frame.

Lifecycle: configure loads and validates the model (a missing, corrupt or
mismatched model fails the transition with a clear error and leaves the node
unconfigured and alive), activate builds the agent, runs a warm-up inference
and starts the loops, deactivate stops them and frees the agent, cleanup
drops the model. With ``autostart`` the node configures and activates itself.
"""
import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image, PointCloud2

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.resources import default_model
from social_pose_diffusion.core.skeleton import apply_delta, pose_delta
from social_pose_diffusion.ros.common import (ERROR, OK, STATE_QOS, WARN, LatestSlot, Reporter, Stats, declare, diagnostic_array, run_node,
                     sensor_qos)
from social_pose_diffusion.msgs.images import message_to_bgr
from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame, facilitator_cloud
from social_pose_diffusion.ros.messages import RCLPY

PARAMETERS = {
    'model_path': ('', 'policy model (stem, .safetensors/.json or directory); empty: the packaged default'),
    'device': ('auto', "'auto' (cuda when available), 'cpu' or 'cuda'"),
    'samples': (4, 'plans sampled per observation: their medoid is executed, their spread is the '
                   'per-joint uncertainty (1: no uncertainty)'),
    'sampler': ('', "sampler override (e.g. 'ddim', 'diffusion_x', 'euler'); empty: the model's default"),
    'steps': (0, 'evaluations of a few-step sampler; 0: the model default'),
    'control_rate': (30.0, 'rate of the control loop publishing /facilitator/pose (Hz)'),
    'publish_on_plan': (True, 'publish a new plan at once and restart the control period from it (lower '
                              'latency; intervals then vary between a quarter and one period); false: '
                              'strictly fixed-rate output'),
    'torch_threads': (0, 'intra-op threads for torch; 0 leaves the default'),
    'max_clock_offset': (5.0, 'observations stamped further than this (s) from the node clock are timed '
                              'by their arrival instead (a bag played without use_sim_time)'),
    'reanchor': (0.0, 'pull the integrated pose toward /facilitator/observed by this weight per plan (0..1)'),
    'init_from_observed': (False, 'start (and restart after a reset) from the observed facilitator pose'),
    'frame_id': ('camera', 'frame_id of /facilitator/pose'),
    'image_topic': ('/camera/image_raw', "camera topic, used only by policies observing raw frames ('raw' encoder)"),
    'image_transport': ('raw', "'raw' or 'compressed' (<image_topic>/compressed), for 'raw'-encoder policies"),
    'autostart': (True, 'configure and activate on start-up'),
    'diagnostics_period': (1.0, 'seconds between /diagnostics messages'),
}


class PolicyNode(LifecycleNode):

    def __init__(self):
        super().__init__('policy_node')
        self.params = declare(self, PARAMETERS)
        self._stats = Stats()
        self._report = Reporter(self.get_logger())
        self._lock = threading.Lock()
        self._policy = self._agent = self._plan = None
        self._worker = self._timer = None
        self._slot = LatestSlot()
        self._running = False
        self._commits = deque(maxlen=256)
        self._observed = None
        self._reset_pending = self._fresh_plan = False
        self._label = 'unconfigured'
        self._last_obs = self._last_tick = self._last_pose = None
        self._pose_pub = self._sub = self._observed_sub = self._image_sub = self._image = None
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(self.params['diagnostics_period'], self._publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))

    # -- lifecycle ---------------------------------------------------------
    def _read_parameters(self):
        """Parameters as they are now: set them on an inactive node, then configure / activate."""
        self.params = {name: self.get_parameter(name).value for name in PARAMETERS}
        return self.params

    def on_configure(self, state):
        from social_pose_diffusion.policy import load_policy
        p = self._read_parameters()
        path = p['model_path'] or str(default_model())
        try:
            if p['control_rate'] <= 0 or p['samples'] < 1:
                raise ValueError('control_rate must be > 0 and samples >= 1')
            if p['torch_threads'] > 0:
                import torch
                torch.set_num_threads(p['torch_threads'])
            start = time.perf_counter()
            self._policy = load_policy(path, device=p['device'])
            if p['image_transport'] not in ('raw', 'compressed'):
                raise ValueError(f"image_transport must be 'raw' or 'compressed', not {p['image_transport']!r}")
        except ValueError as exc:  # ModelError is a ValueError
            self._policy = None
            self.get_logger().error(f'configure failed, node stays unconfigured: {exc}')
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:
            self._policy = None
            self.get_logger().error(f'configure failed loading {path}: {type(exc).__name__}: {exc}')
            return TransitionCallbackReturn.FAILURE
        c = self._policy.config
        self.get_logger().info(f'loaded {path}: {c.policy}/{c.sampler} {c.encoder} encoder, horizon {c.horizon}, '
                               f'on {self._policy.device} in {time.perf_counter() - start:.2f} s')
        self._label = 'inactive'
        self._pose_pub = self.create_lifecycle_publisher(PointCloud2, '/facilitator/pose', STATE_QOS)
        self._sub = self.create_subscription(PointCloud2, '/humans/keypoints', self._on_keypoints, STATE_QOS)
        self._observed_sub = self.create_subscription(PointCloud2, '/facilitator/observed', self._on_observed,
                                                      STATE_QOS)
        if c.encoder_spec.needs_camera:  # raw-frame observation: keep the newest camera frame
            compressed = p['image_transport'] == 'compressed'
            self._image_sub = self.create_subscription(
                CompressedImage if compressed else Image, p['image_topic'] + ('/compressed' if compressed else ''),
                self._on_image, sensor_qos())
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        from social_pose_diffusion.planning.agent import FacilitatorAgent
        p = self._read_parameters()
        try:
            agent = FacilitatorAgent(self._policy, fps=self._policy.config.fps, samples=p['samples'],
                                     sampler=p['sampler'] or None, steps=p['steps'] or None,
                                     reanchor=p['reanchor'])
            # Warm-up: the first inference pays for allocations and kernel selection.
            start = time.perf_counter()
            raw = self._policy.config.encoder_spec.needs_camera
            agent.plan(GroupFrame(0), image=np.zeros((480, 960, 3), np.uint8) if raw else None)
            agent.reset()
        except Exception as exc:
            self.get_logger().error(f'activate failed in the warm-up inference: {type(exc).__name__}: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'warm-up inference took {1e3 * (time.perf_counter() - start):.0f} ms')
        with self._lock:
            self._agent, self._plan, self._last_pose = agent, None, None
            self._last_obs = self._last_tick = None
            self._commits.clear()
            self._reset_pending = True
        self._running = True
        self._slot = LatestSlot()
        self._worker = threading.Thread(target=self._work, name='planner', daemon=True)
        self._worker.start()
        self._timer = self.create_timer(1.0 / p['control_rate'], self._tick)
        self._label = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state):
        self._stop()
        self._label = 'inactive'
        self.get_logger().info('deactivated: control loop and planner stopped, agent freed')
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self._stop()
        for entity, destroy in ((self._sub, self.destroy_subscription),
                                (self._image_sub, self.destroy_subscription),
                                (self._observed_sub, self.destroy_subscription),
                                (self._pose_pub, self.destroy_lifecycle_publisher)):
            if entity is not None:
                destroy(entity)
        self._sub = self._observed_sub = self._image_sub = self._pose_pub = None
        self._policy = None
        self._label = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        self._stop()
        self._label = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state):
        self._stop()
        self._policy = None
        self._label = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def start(self):
        """With ``autostart``, configure and activate right away (as a launch file's lifecycle events would)."""
        if self.params['autostart'] and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def shutdown(self):
        self._stop()

    def _stop(self):
        self._running = False
        self._slot.close()
        with self._lock:  # the planner thread resets the timer under the lock
            timer, self._timer = self._timer, None
        if timer is not None:
            self.destroy_timer(timer)
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        with self._lock:
            self._agent = self._plan = None
        if self._policy is not None and self._policy.device.type == 'cuda':
            import torch
            torch.cuda.empty_cache()

    # -- inputs --------------------------------------------------------------
    def _on_keypoints(self, msg):
        if not self._running:
            return
        self._stats.event('input')
        try:
            frame = cloud_to_frame(msg)
        except ValueError as exc:
            self._stats.count('rejected keypoint messages')
            self._report('input', f'rejected keypoint cloud: {exc}', 'error')
            return
        now = self.get_clock().now().nanoseconds
        with self._lock:
            if self._last_obs is not None and frame.stamp_ns < self._last_obs:
                # A looping bag or restarted driver: history and plan belong to another timeline.
                self._report('jump', f'observation time jumped back by {(self._last_obs - frame.stamp_ns) * 1e-9:.3f}'
                                     ' s; resetting the facilitator state', 'warning')
                self._request_reset()
            self._last_obs = frame.stamp_ns
        if self._slot.put((now, frame)):
            self._stats.count('dropped observations (planner busy)')

    def _on_observed(self, msg):
        try:
            person = cloud_to_frame(msg)
        except ValueError:
            return
        if len(person):
            self._observed = person.keypoints[0]

    def _on_image(self, msg):
        self._image = msg  # decoded only when a plan needs it

    def _request_reset(self):
        """Called with the lock held: forget the plan now, the planner resets the agent."""
        self._plan = self._last_pose = None
        self._reset_pending = True
        self._commits.clear()
        self._stats.count('state resets')

    # -- planning thread ---------------------------------------------------------
    def _work(self):
        self._slot.serve(lambda item: self._plan_once(*item), lambda: self._running, self._on_worker_error)

    def _on_worker_error(self, exc):
        self._stats.count('planning errors')
        self.get_logger().error(f'unexpected planner error: {type(exc).__name__}: {exc}')

    def _plan_once(self, arrival, frame):
        """Plan from one observation and hand the plan to the control loop."""
        with self._lock:
            agent, reset = self._agent, self._reset_pending
            commits = list(self._commits)
            self._commits.clear()
            self._reset_pending = False
        if agent is None:
            return
        try:
            if reset:
                observed = self._observed if self.params['init_from_observed'] else None
                agent.reset(initial_pose=observed)
                with self._lock:
                    self._last_pose = None
            else:
                for stamp, pose in commits:
                    agent.commit(stamp, pose)
            image = None
            if self._policy.config.encoder_spec.needs_camera:
                if self._image is None:
                    self._report('image', 'waiting for a camera frame: this policy observes raw frames')
                    return
                image = message_to_bgr(self._image)
            start = time.perf_counter()
            plan = agent.plan(frame, image=image,
                              observed=self._observed if self.params['reanchor'] > 0 else None)
            took = time.perf_counter() - start
        except Exception as exc:
            self._stats.count('planning errors')
            self._report('plan', f'planning failed on the frame stamped {frame.stamp_ns * 1e-9:.3f} s: '
                                 f'{type(exc).__name__}: {exc}', 'error')
            return
        self._stats.duration('planning', took)
        self._stats.event('plan')
        self._stats.count('plans')
        # Plans are stamped from the observation; re-time them by arrival when the
        # observation's clock is not ours (bag without use_sim_time, another host).
        shift = 0
        if abs(arrival - frame.stamp_ns) > self.params['max_clock_offset'] * 1e9:
            shift = arrival - frame.stamp_ns
            self._report('clock', f'observation stamps are {shift * 1e-9:.1f} s from the node clock; '
                                  'timing plans by arrival (use_sim_time for bags?)', 'warning')
        with self._lock:
            if not self._reset_pending and self._agent is agent:
                self._plan = (plan.stamps_ns + shift, plan.poses, plan.spread, frame.stamp_ns + shift)
                self._fresh_plan = True
                self._publish_plan_now()

    # -- control loop ----------------------------------------------------------
    def _publish_plan_now(self):
        """Called with the lock held: publish the new plan at once and restart the loop's period from here.

        Skipped within a quarter period of the last tick, so output never bursts.
        """
        timer, period = self._timer, 1e9 / self.params['control_rate']
        now = self.get_clock().now().nanoseconds
        if timer is None or not self.params['publish_on_plan'] or (
                self._last_tick is not None and now - self._last_tick < period / 4):
            return
        self._publish(now)
        timer.reset()

    def _tick(self):
        with self._lock:
            self._publish(self.get_clock().now().nanoseconds)

    def _publish(self, now):
        """Called with the lock held: publish the pose at ``now`` (plan interpolated, or the last pose held)."""
        if self._last_tick is not None and now < self._last_tick:
            self._report('clock', f'node clock jumped back by {(self._last_tick - now) * 1e-9:.3f} s; '
                                  'resetting the facilitator state', 'warning')
            self._request_reset()
        self._last_tick = now
        if self._plan is None:
            if self._last_pose is None:
                return
            pose, spread, obs = self._last_pose
            self._stats.count('held ticks (no plan)')
        else:
            pose, spread, obs = self._sample_plan(now)
        self._last_pose = (pose, spread, obs)
        self._commits.append((now, pose))
        header = RCLPY.header(now, self.params['frame_id'])
        self._pose_pub.publish(facilitator_cloud(pose, spread, (now - obs) * 1e-9, header, RCLPY))
        self._stats.event('control')

    def _sample_plan(self, now):
        """The plan interpolated at ``now``; entries already in the past are dropped."""
        stamps, poses, spread, obs = self._plan
        later = int(np.searchsorted(stamps, now, side='right'))
        if later == 0:  # the plan starts in the future: hold the last pose until then
            self._fresh_plan = False
            if self._last_pose is None:
                return poses[0], spread[0], obs
            return self._last_pose[0], spread[0], obs
        if later >= len(stamps):  # plan used up: hold its last pose until the next one
            self._stats.count('held ticks (plan exhausted)')
            return poses[-1], spread[-1], obs
        if self._fresh_plan:  # entries whose time passed while the plan was being computed
            self._stats.count('plan entries dropped (late)', later - 1)
            self._fresh_plan = False
        w = (now - stamps[later - 1]) / max(stamps[later] - stamps[later - 1], 1)
        pose = apply_delta(poses[later - 1], w * pose_delta(poses[later - 1], poses[later]))
        spread_now = (1 - w) * spread[later - 1] + w * spread[later]
        self._plan = (stamps[later - 1:], poses[later - 1:], spread[later - 1:], obs)
        return pose, spread_now, obs

    def _publish_diagnostics(self):
        state = self._label
        level, message = OK, state
        if state != 'active':
            level, message = WARN, f'{state}: not publishing'
        elif self._stats.rate('input') == 0.0:
            level, message = WARN, 'active, no keypoint input'
        if self._running and (self._worker is None or not self._worker.is_alive()):
            level, message = ERROR, 'planner thread stopped'
        values = self._stats.key_values(rates=(('input', 'input rate'), ('plan', 'plan rate'),
                                               ('control', 'control rate')),
                                        durations=(('planning', 'policy latency'),))
        values.append(('control rate target (Hz)', f"{self.params['control_rate']:.1f}"))
        self._diag_pub.publish(diagnostic_array(self, level, message, values))


def main(args=None):
    run_node(PolicyNode, args)


if __name__ == '__main__':
    main()
