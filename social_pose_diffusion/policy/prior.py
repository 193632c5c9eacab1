"""The damped constant-velocity forecast.

The obvious baseline, and optionally the prior a policy refines.

The facilitator keeps moving as in the last frame, slowing with a time
constant ``decay_s`` (seconds, so one value fits every frame rate). On
real tracks this beats holding the pose at short horizons and converges to
holding at long ones.
"""

import numpy as np

# Velocity time constants (s) a damped constant-velocity baseline is fitted from; a prior may also
# choose HOLD_S, which is holding the pose, so it is never worse than the better of the two
# baselines.
DECAY_GRID_S = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
HOLD_S = 0.01


def decay_per_frame(fps: float, decay_s: float) -> float:
    """The per-frame velocity factor of time constant ``decay_s`` at ``fps``."""
    return float(np.exp(-1.0 / (float(fps) * float(decay_s))))


def prior_deltas(last_delta, horizon: int, decay: float) -> np.ndarray:
    """(..., H, J, 2) deltas ``v d, v d^2, ...`` from the last per-frame delta ``v``.

    ``v``: (..., J, 2).
    """
    powers = float(decay) ** np.arange(1, int(horizon) + 1)
    return np.asarray(last_delta, np.float64)[..., None, :, :] * powers[:, None, None]


def last_delta(proprio) -> np.ndarray:
    """The newest per-frame delta (..., J, 2) held in proprioception vectors.

    See observation.features.
    """
    from social_pose_diffusion.core.skeleton import NUM_JOINTS

    proprio = np.asarray(proprio, np.float64)
    return proprio[..., -NUM_JOINTS * 2 :].reshape(proprio.shape[:-1] + (NUM_JOINTS, 2))
