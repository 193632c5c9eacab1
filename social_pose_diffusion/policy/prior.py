"""The damped constant-velocity forecast, optionally pulled toward a rest posture.

The obvious baselines, and optionally the prior a policy refines.

The facilitator keeps moving as in the last frame, slowing with a time
constant ``decay_s`` (seconds, so one value fits every frame rate). On
real tracks this beats holding the pose at short horizons and converges to
holding at long ones. Over seconds a seated facilitator does not hold a
turn or a gesture for ever: it returns toward its rest posture, so the
``rest`` prior also pulls the posture (every joint relative to the upper
body's centre, and that centre's height) toward the session's rest
posture with a time constant ``rest_s``. The pull never moves the body
along the panorama, so a model works at any seat; the integrator's home
pull keeps it where it started.
"""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import NUM_JOINTS, UPPER_BODY
from social_pose_diffusion.observation.features import history_slice

# Velocity time constants (s) a damped constant-velocity baseline is fitted from; a prior may also
# choose HOLD_S, which is holding the pose (a velocity factor below 1e-14 per frame up to 30 fps),
# so it is never worse than the better of the two baselines.
DECAY_GRID_S = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
HOLD_S = 0.001
# The ``rest`` prior's pull time constant (s) unless one is given; NO_PULL (0) is none. Fitting it
# on 24 s of training time chose worse than this fixed value on held-out time of real-like tracks
# (README, "Your own recordings").
REST_S = 30.0
NO_PULL = 0.0


def decay_per_frame(fps: float, decay_s: float) -> float:
    """The per-frame velocity factor of time constant ``decay_s`` at ``fps``."""
    return float(np.exp(-1.0 / (float(fps) * float(decay_s))))


def pull_per_frame(fps: float, rest_s: float) -> float:
    """The share of the way to the rest posture covered per frame (0 for :data:`NO_PULL`)."""
    return 0.0 if rest_s == NO_PULL else 1.0 - decay_per_frame(fps, rest_s)


def prior_deltas(last_delta, horizon: int, decay: float) -> np.ndarray:
    """(..., H, J, 2) deltas ``v d, v d^2, ...`` from the last per-frame delta ``v``.

    ``v``: (..., J, 2).
    """
    powers = float(decay) ** np.arange(1, int(horizon) + 1)
    return np.asarray(last_delta, np.float64)[..., None, :, :] * powers[:, None, None]


def last_delta(proprio: ArrayLike, history: int) -> np.ndarray:
    """The newest per-frame delta (..., J, 2) held in proprioception vectors of ``history``.

    See observation.features (a style code may follow the deltas).
    """
    proprio = np.asarray(proprio, np.float64)
    newest = proprio[..., history_slice(history)][..., -NUM_JOINTS * 2 :]
    return newest.reshape(proprio.shape[:-1] + (NUM_JOINTS, 2))


def posture(proprio: ArrayLike) -> np.ndarray:
    """The current posture (..., J, 2) held in proprioception vectors.

    Every joint's u relative to the upper body's centre and its own v.
    """
    proprio = np.asarray(proprio, np.float64)
    out = proprio[..., : NUM_JOINTS * 2].reshape(proprio.shape[:-1] + (NUM_JOINTS, 2)).copy()
    out[..., 1] += proprio[..., NUM_JOINTS * 2, None]  # the centre's v
    return out


def rest_deltas(
    last_delta: ArrayLike,
    posture: ArrayLike,
    rest: ArrayLike,
    horizon: int,
    decay: float,
    pull: float,
) -> np.ndarray:
    """(..., H, J, 2) deltas of the damped velocity pulled toward the posture ``rest`` (J, 2).

    ``delta_k = decay * delta_(k-1) + pull * (rest - posture_(k-1))`` with
    ``delta_0`` the last delta, postures as :func:`posture` gives them (centred
    in u, so the pull never moves the body along the panorama). A plan that
    executes its first step each frame follows the same recursion, so chunks
    and closed-loop rollouts agree; ``pull`` 0 is :func:`prior_deltas`.
    """
    delta = np.asarray(last_delta, np.float64)
    now = np.asarray(posture, np.float64)
    rest = np.asarray(rest, np.float64)
    out = np.empty(delta.shape[:-2] + (int(horizon),) + delta.shape[-2:])
    for k in range(int(horizon)):
        delta = decay * delta + pull * (rest - now)
        now = now + delta
        now[..., 0] -= now[..., UPPER_BODY, 0].mean(-1, keepdims=True)
        out[..., k, :, :] = delta
    return out
