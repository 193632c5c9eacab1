"""Executes timestamped pose plans on a clock (no ROS): the policy node's control loop in pure Python.

A plan holds the facilitator's next poses at future stamps. The follower
interpolates it at the time of each control tick, drops entries whose time
passed while the plan was computed, holds the last pose when the plan runs
out or before the first one, and refuses non-finite plans so nothing
non-finite is ever executed. A clock that goes back forgets everything: the
caller resets its agent too. Counters feed the node's diagnostics.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from social_pose_diffusion.core.skeleton import apply_delta, pose_delta


def interpolate(stamps_ns: np.ndarray, poses: np.ndarray, t_ns: float, snap_ns: float = 0.0):
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
    """What to execute at one control tick: ``pose`` (J, 2), ``spread`` (J,), the plan's observation stamp."""

    pose: np.ndarray
    spread: np.ndarray
    obs_ns: int


class PlanFollower:
    """Interpolates the newest plan at each tick of a control loop with period ``period_ns``."""

    def __init__(self, period_ns: float):
        if not np.isfinite(period_ns) or period_ns <= 0:
            raise ValueError(f'control period must be finite and > 0 ns, not {period_ns!r}')
        self.period_ns = float(period_ns)
        self.late_dropped = 0       # plan entries whose time passed before their first tick
        self.held_no_plan = 0       # ticks that repeated the last pose: no plan (yet, or refused)
        self.held_exhausted = 0     # ticks past the plan's last entry
        self.refused = 0            # non-finite plans refused
        self.time_resets = 0        # ticks earlier than the previous one
        self.reset()

    def reset(self) -> None:
        """Forget the plan, the last pose and the last tick (a new episode)."""
        self._plan = None
        self._fresh = False
        self.last: Optional[Tick] = None
        self.last_tick_ns: Optional[int] = None

    def set_plan(self, stamps_ns, poses, spread, obs_ns: int) -> bool:
        """Follow this plan from now on; False (and the last pose held) when it is not finite."""
        stamps_ns, poses, spread = np.asarray(stamps_ns), np.asarray(poses), np.asarray(spread)
        if not (np.isfinite(poses).all() and np.isfinite(spread).all()):
            self.refused += 1
            return False
        self._plan = (stamps_ns, poses, spread, int(obs_ns))
        self._fresh = True
        return True

    def may_publish_early(self, now_ns: int) -> bool:
        """True unless the last tick was less than a quarter period ago (output never bursts)."""
        return self.last_tick_ns is None or now_ns - self.last_tick_ns >= self.period_ns / 4

    def went_back(self, now_ns: int) -> float:
        """Seconds the clock went back since the last tick (0 when it did not); resets if it did."""
        if self.last_tick_ns is None or now_ns >= self.last_tick_ns:
            return 0.0
        back = (self.last_tick_ns - now_ns) * 1e-9
        self.time_resets += 1
        self.reset()
        return back

    def tick(self, now_ns: int) -> Optional[Tick]:
        """The pose to execute at ``now_ns``, or None before the first plan; check :meth:`went_back` first."""
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
            self.last = Tick(interpolate(stamps, poses, now_ns),
                             (1 - w) * spread[later - 1] + w * spread[later], obs)
            self._plan = (stamps[later - 1:], poses[later - 1:], spread[later - 1:], obs)
        self._fresh = False
        return self.last
