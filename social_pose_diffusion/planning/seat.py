"""The executed pose of a seated facilitator: its shoulders come back to their seat.

Integrating per-frame deltas closed loop drifts: a small bias of the sampled
deltas becomes a translation of the whole body that grows over a session (the
shipped policy's shoulders rose about 0.01 in v within 24 s, which made most
of its closed-loop MPJPE). A facilitator sits, and a robot's base does not
move, so what is executed is the integrated pose translated so that the
offset of its shoulders' midpoint from the seat decays with time constant
``return_s``: a lean or a shrug shows, a drift does not.

The agent keeps integrating in its own frame: everything the policy observes
(its history, the group relative to its body) is what it was, so this moves
nothing the policy was trained on; head yaw and gestures, being relative to
the shoulders, are unchanged.
"""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import JOINT, wrap_u

SHOULDERS = (JOINT['left_shoulder'], JOINT['right_shoulder'])


def shoulder_midpoint(pose: ArrayLike) -> np.ndarray:
    """(u, v) midway between the shoulders, wrap-aware in u (..., 2)."""
    pose = np.asarray(pose, np.float64)
    left, right = pose[..., SHOULDERS[0], :2], pose[..., SHOULDERS[1], :2]
    du = wrap_u(right[..., 0] - left[..., 0]) / 2
    return np.stack([(left[..., 0] + du) % 1.0, (left[..., 1] + right[..., 1]) / 2], -1)


def check_return_s(value: float) -> float:
    """``value`` as seconds >= 0 (0: no return), or a ValueError saying why not."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f'seat return time must be a finite number of seconds, not {value!r}')
    if value < 0:
        raise ValueError(f'seat return time must be >= 0 s (0: none), not {value}')
    return float(value)


class SeatAnchor:
    """Executed poses of an integrated pose sequence, shoulders drawn back to the seat.

    ``seat`` is the pose the episode starts in.
    """

    def __init__(self, seat: ArrayLike):
        self.seat = shoulder_midpoint(seat)
        self.drift = np.zeros(2)  # the slow part of the shoulders' offset, taken off
        self.stamp_ns: int | None = None

    def __call__(self, stamp_ns: int, pose: ArrayLike, return_s: float) -> np.ndarray:
        """The pose (J, 2) to execute at ``stamp_ns`` for the integrated ``pose``.

        ``return_s`` 0 executes it unchanged.
        """
        pose = np.asarray(pose, np.float64)[:, :2]
        offset = shoulder_midpoint(pose) - self.seat
        offset[0] = wrap_u(offset[0])
        dt = 0.0 if self.stamp_ns is None else max(stamp_ns - self.stamp_ns, 0) * 1e-9
        self.stamp_ns = stamp_ns if self.stamp_ns is None else max(stamp_ns, self.stamp_ns)
        if return_s > 0:
            self.drift = self.drift + (offset - self.drift) * (1.0 - np.exp(-dt / return_s))
        else:
            self.drift = np.zeros(2)
        out = pose - self.drift
        out[:, 0] %= 1.0
        return out
