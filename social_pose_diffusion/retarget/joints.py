"""Facilitator pose (normalised equirect u, v) to joint angles of a simple upper body.

The body (``config/facilitator.urdf``) has six revolute joints; angles follow
REP-103 (x forward, y left, z up) and are measured in the person's own frame,
so the robot's left arm follows the facilitator's left arm whichever way the
camera sees them:

============== ==== ============= ================================================================
joint          axis limits (rad)  what it follows
============== ==== ============= ================================================================
head_yaw       +z   -1.40 .. 1.40 nose sideways from above the shoulders (+ = to the left)
head_pitch     +y   -0.60 .. 0.80 nose below / above its resting height (+ = nodding down)
left_shoulder  +x   -0.50 .. 3.00 left upper arm in the body plane (0 = hanging, +pi/2 = sideways)
right_shoulder -x   -0.50 .. 3.00 mirrored
left_elbow     +x   -2.50 .. 2.50 left forearm relative to the upper arm, same sense
right_elbow    -x   -2.50 .. 2.50 mirrored
============== ==== ============= ================================================================

A 2D skeleton has no depth, so the arms move in the body's frontal plane:
enough for a virtual agent or a robot to turn to a speaker, nod and gesture
toward someone. Angles are computed on the sphere's tangent plane at the
shoulders' midpoint (see :func:`skeleton.tangent_offset`), so they do not
depend on where around the camera the facilitator sits.
"""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import JOINT, from_tangent, tangent_offset

JOINT_NAMES = (
    'head_yaw',
    'head_pitch',
    'left_shoulder',
    'right_shoulder',
    'left_elbow',
    'right_elbow',
)
LIMITS = {
    'head_yaw': (-1.40, 1.40),
    'head_pitch': (-0.60, 0.80),
    'left_shoulder': (-0.50, 3.00),
    'right_shoulder': (-0.50, 3.00),
    'left_elbow': (-2.50, 2.50),
    'right_elbow': (-2.50, 2.50),
}
# How far the nose moves for a quarter turn, and its resting height above the
# shoulders' midpoint, as fractions of the shoulder width (a seated adult's proportions).
HEAD_RADIUS = 0.40
NOSE_HEIGHT = 0.63


def _angle(vec, out, down):
    """Angle of ``vec`` from ``down`` toward ``out`` (radians)."""
    return np.arctan2(vec @ out, vec @ down)


def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


def joint_angles(pose: ArrayLike) -> dict[str, float]:
    """Unclamped angles ``{name: radians}`` for one (J, 2|3) facilitator pose.

    ValueError if not finite.
    """
    pose = np.asarray(pose, dtype=np.float64)[:, :2]
    if pose.shape[0] <= max(JOINT.values()) or not np.all(np.isfinite(pose)):
        raise ValueError('facilitator pose must hold finite (u, v) for every joint')
    ls, rs = pose[JOINT['left_shoulder']], pose[JOINT['right_shoulder']]
    # The shoulders' midpoint, with u averaged across the seam.
    mid = from_tangent(ls, 0.5 * tangent_offset(ls, rs))
    p = tangent_offset(np.broadcast_to(mid, pose.shape), pose)  # image-plane offsets, y grows down
    across = p[JOINT['left_shoulder']] - p[JOINT['right_shoulder']]
    width = float(np.linalg.norm(across))
    if width < 1e-6:
        raise ValueError('facilitator shoulders coincide; pose is degenerate')
    left = across / width
    down = np.array([-left[1], left[0]])
    if down[1] < 0:
        down = -down
    # The nose relative to its resting place above the shoulders: a turning head moves
    # it sideways (in the image the neck is not rigid), a nod moves it down.
    nose = p[JOINT['nose']]
    radius = HEAD_RADIUS * width
    angles = {
        'head_yaw': float(np.arcsin(np.clip(nose @ left / radius, -1.0, 1.0))),
        'head_pitch': float(
            np.arcsin(np.clip((nose @ down + NOSE_HEIGHT * width) / radius, -1.0, 1.0))
        ),
    }
    for side, out in (('left', left), ('right', -left)):
        upper = p[JOINT[f'{side}_elbow']] - p[JOINT[f'{side}_shoulder']]
        fore = p[JOINT[f'{side}_wrist']] - p[JOINT[f'{side}_elbow']]
        shoulder = _angle(upper, out, down)
        # Keep a raised arm continuous past straight up instead of jumping to -pi.
        if shoulder < LIMITS[f'{side}_shoulder'][0] - 0.5:
            shoulder += 2 * np.pi
        angles[f'{side}_shoulder'] = float(shoulder)
        angles[f'{side}_elbow'] = float(_wrap(_angle(fore, out, down) - _angle(upper, out, down)))
    return angles


def clamp(angles: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """Angles clipped to :data:`LIMITS`; returns ``(clamped dict, names that were clipped)``."""
    out, clipped = {}, []
    for name, value in angles.items():
        lo, hi = LIMITS[name]
        out[name] = float(min(max(value, lo), hi))
        if out[name] != value:
            clipped.append(name)
    return out, clipped


def limit_velocity(
    previous: dict[str, float] | None,
    target: dict[str, float],
    max_velocity: float,
    dt: float,
) -> dict[str, float]:
    """Move each angle from ``previous`` toward ``target`` by at most ``max_velocity * dt``."""
    if previous is None or max_velocity <= 0 or dt <= 0:
        return dict(target)
    step = max_velocity * dt
    return {
        name: previous[name] + float(np.clip(target[name] - previous[name], -step, step))
        for name in target
    }


def retarget(pose: ArrayLike) -> list[float]:
    """Clamped joint positions in :data:`JOINT_NAMES` order for one facilitator pose."""
    angles, _ = clamp(joint_angles(pose))
    return [angles[name] for name in JOINT_NAMES]
