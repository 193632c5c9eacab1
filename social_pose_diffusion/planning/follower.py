"""Executing timestamped pose plans on a clock: the policy node's control core, without ROS.

A plan holds the facilitator's next poses at future stamps. The follower
interpolates it at the time of each control tick, drops entries whose time
passed while the plan was computed, holds the last pose when the plan runs
out or before the first one, and refuses non-finite plans so nothing
non-finite is ever executed. A clock that goes back forgets everything: the
caller resets its agent too. Counters feed the node's diagnostics.
"""

import threading
from dataclasses import dataclass, replace

import numpy as np

from social_pose_diffusion.core.skeleton import apply_delta, pose_delta


def interpolate(
    stamps_ns: np.ndarray, poses: np.ndarray, t_ns: float, snap_ns: float = 0.0
) -> np.ndarray:
    """The pose of a stamped sequence at ``t_ns`` (wrap-aware), held beyond either end.

    Times within ``snap_ns`` of an entry take that entry exactly, so a sequence
    sampled at its own stamps (up to integer rounding) returns its poses bit for bit.
    """
    later = int(np.searchsorted(stamps_ns, t_ns, side='right'))
    if later == 0:
        return poses[0]
    if t_ns - stamps_ns[later - 1] <= snap_ns or later == len(stamps_ns):
        return poses[later - 1]
    if stamps_ns[later] - t_ns <= snap_ns:
        return poses[later]
    w = (t_ns - stamps_ns[later - 1]) / (stamps_ns[later] - stamps_ns[later - 1])
    return apply_delta(poses[later - 1], w * pose_delta(poses[later - 1], poses[later]))


@dataclass
class Tick:
    """What to execute at a tick: ``pose`` (J, 2), ``spread`` (J,), the plan's obs stamp."""

    pose: np.ndarray
    spread: np.ndarray
    obs_ns: int


class PlanFollower:
    """Interpolates the newest plan at each tick of a control loop with period ``period_ns``."""

    def __init__(self, period_ns: float):
        if not np.isfinite(period_ns) or period_ns <= 0:
            raise ValueError(f'control period must be finite and > 0 ns, not {period_ns!r}')
        self.period_ns = float(period_ns)
        self.late_dropped = 0  # plan entries whose time passed before their first tick
        self.held_no_plan = 0  # ticks that repeated the last pose: no plan (yet, or refused)
        self.held_exhausted = 0  # ticks past the plan's last entry
        self.refused = 0  # non-finite plans refused
        self.time_resets = 0  # ticks earlier than the previous one
        self.reset()

    def reset(self) -> None:
        """Forget the plan, the last pose and the last tick (a new episode)."""
        self._plan: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None
        self._fresh = False
        self.last: Tick | None = None
        self.last_tick_ns: int | None = None

    def set_plan(self, stamps_ns, poses, spread, obs_ns: int) -> bool:
        """Follow this plan from now on; False (and the last pose held) when it is not finite."""
        stamps_ns, poses, spread = np.asarray(stamps_ns), np.asarray(poses), np.asarray(spread)
        if not (np.isfinite(poses).all() and np.isfinite(spread).all()):
            self.refused += 1
            return False
        self._plan = (stamps_ns, poses, spread, int(obs_ns))
        self._fresh = True
        return True

    def hold(self, pose, obs_ns: int) -> None:
        """Hold ``pose`` (J, 2) until a plan comes, unless something is executed already."""
        if self.last is None:
            self.last = Tick(np.asarray(pose), np.zeros(len(pose)), int(obs_ns))

    def may_publish_early(self, now_ns: int) -> bool:
        """True unless the last tick was less than a quarter period ago (output never bursts)."""
        return self.last_tick_ns is None or now_ns - self.last_tick_ns >= self.period_ns / 4

    def went_back(self, now_ns: int) -> float:
        """Seconds the clock went back since the last tick (0 if it did not); resets if it did."""
        if self.last_tick_ns is None or now_ns >= self.last_tick_ns:
            return 0.0
        back = (self.last_tick_ns - now_ns) * 1e-9
        self.time_resets += 1
        self.reset()
        return back

    def tick(self, now_ns: int) -> Tick | None:
        """What to execute at ``now_ns`` (None before any plan); check :meth:`went_back` first."""
        self.last_tick_ns = now_ns
        if self._plan is None:
            if self.last is not None:
                self.held_no_plan += 1
            return self.last
        stamps, poses, spread, obs = self._plan
        later = int(np.searchsorted(stamps, now_ns, side='right'))
        if later == 0:  # the plan starts in the future: hold the last pose until then
            pose = poses[0] if self.last is None else self.last.pose
            self.last = Tick(pose, spread[0], obs)
        elif later >= len(stamps):  # plan used up: hold its last pose until the next one
            self.held_exhausted += 1
            self.last = Tick(poses[-1], spread[-1], obs)
        else:
            if self._fresh:  # entries whose time passed while the plan was being computed
                self.late_dropped += later - 1
            a, b = stamps[later - 1], stamps[later]
            w = (now_ns - a) / max(b - a, 1)
            self.last = Tick(
                interpolate(stamps, poses, now_ns),
                (1 - w) * spread[later - 1] + w * spread[later],
                obs,
            )
            self._plan = (stamps[later - 1 :], poses[later - 1 :], spread[later - 1 :], obs)
        self._fresh = False
        return self.last


class Controller:
    """An agent and its follower shared by a planner thread and a control loop (the node's core).

    The planner calls :meth:`plan` with each observation: it resets the agent
    when an episode (re)starts, commits the poses executed since the last plan
    (its proprioception) and hands the new plan to the follower. The control
    loop calls :meth:`tick`. ``start_pose(agent)`` gives an episode's initial
    pose, or None while it is not known yet (planning waits for it).
    """

    def __init__(self, start_pose):
        self._start_pose, self._lock = start_pose, threading.Lock()
        self.agent, self.follower, self._last_obs = None, PlanFollower(1e9 / 30), None
        self.resets = self.timed_by_arrival = 0
        self._commits, self._reset_pending, self._offset_noted = [], True, False

    def start(self, agent, period_ns: float) -> None:
        """Drive ``agent`` with a control loop of period ``period_ns`` from a fresh episode."""
        with self._lock:
            self.agent, self.follower.period_ns, self._last_obs = agent, float(period_ns), None
            self._request_reset()

    def stop(self) -> None:
        with self._lock:
            self.agent = None

    def _request_reset(self) -> None:
        """With the lock held: forget the plan; the planner resets the agent before planning."""
        self.follower.reset()
        self._commits, self._reset_pending, self._offset_noted = [], True, False
        self.resets += 1

    def observed(self, stamp_ns: int) -> float:
        """Note an observation's stamp; seconds it went back (the episode restarts), else 0."""
        with self._lock:
            last, self._last_obs = self._last_obs, stamp_ns
            if last is None or stamp_ns >= last:
                return 0.0
            self._request_reset()
            return (last - stamp_ns) * 1e-9

    def plan(self, frame, arrival_ns: int, max_offset_ns: float, **options) -> str:
        """Plan from ``frame`` (``options`` go to the agent), follow the plan; say what happened.

        'planned'; 'by arrival' (the first plan of an episode re-timed by its
        arrival: the observation's clock is more than ``max_offset_ns`` from
        ours); 'waiting' (no start pose yet); 'stale' (reset or stopped
        meanwhile); 'refused' (not finite: the last good pose, or the start, is held).
        """
        with self._lock:
            agent, reset, commits = self.agent, self._reset_pending, self._commits
            self._commits, self._reset_pending = [], False
        if agent is None:
            return 'stale'
        if reset:
            start = self._start_pose(agent)
            if start is None:
                with self._lock:
                    self._reset_pending = True
                return 'waiting'
            agent.reset(initial_pose=start)
        for stamp, pose in commits:
            agent.commit(stamp, pose)
        plan = agent.plan(frame, **options)
        offset = arrival_ns - frame.stamp_ns
        shift = offset if abs(offset) > max_offset_ns else 0
        with self._lock:
            if self._reset_pending or self.agent is not agent:
                return 'stale'
            if not self.follower.set_plan(
                plan.stamps_ns + shift, plan.poses, plan.spread, frame.stamp_ns + shift
            ):
                self.follower.hold(agent.pose, frame.stamp_ns + shift)  # the start, if nothing yet
                return 'refused'
            if not shift:
                return 'planned'
            self.timed_by_arrival += 1
            first, self._offset_noted = not self._offset_noted, True
            return 'by arrival' if first else 'planned'

    def tick(self, now_ns: int, early: bool = False) -> tuple[Tick | None, float]:
        """``(tick, seconds the clock went back)``: what to execute now.

        The agent's anchored pose (the integrated one is committed as executed).
        The tick is None before the first plan and, when ``early`` (a new
        plan), within a quarter period of the last tick.
        """
        with self._lock:
            if early and not self.follower.may_publish_early(now_ns):
                return None, 0.0
            back = self.follower.went_back(now_ns)
            if back:
                self._request_reset()
            tick = self.follower.tick(now_ns)
            if tick is not None:
                self._commits.append((now_ns, tick.pose))
                if self.agent is not None:
                    tick = replace(tick, pose=self.agent.anchored(now_ns, tick.pose))
            return tick, back

    def counts(self) -> dict:
        """Counters for diagnostics (over the controller's life)."""
        f = self.follower
        return {
            'plan entries dropped (late)': f.late_dropped,
            'held ticks (no plan)': f.held_no_plan,
            'held ticks (plan exhausted)': f.held_exhausted,
            'non-finite plans refused': f.refused,
            'state resets': self.resets,
            'plans timed by arrival (clock offset)': self.timed_by_arrival,
            'plans held (nobody in view)': self.agent.idle_plans if self.agent else 0,
        }
