"""Scoring extracted people against known ground truth (composites of real photos)."""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import JOINT
from social_pose_diffusion.perception.equirect import angle_between, uv_to_ray
from social_pose_diffusion.perception.people import scale

KEY_JOINTS = [JOINT[n] for n in ('nose', 'left_shoulder', 'right_shoulder')]


def joint_errors(frame: GroupFrame, truth: ArrayLike) -> np.ndarray | None:
    """Angular error (radians) of every joint of the detected person nearest to ``truth``.

    ``truth`` is (J, >=2); None if nobody.
    """
    if not len(frame):
        return None
    errors = angle_between(
        uv_to_ray(frame.keypoints[..., :2]), uv_to_ray(np.asarray(truth)[None, :, :2])
    )
    return errors[int(np.argmin(errors[:, KEY_JOINTS].mean(axis=1)))]


def found(frame: GroupFrame, truth: ArrayLike, tolerance: float = 0.5) -> bool:
    """True when someone's nose and shoulders lie near ``truth``'s.

    Near: within ``tolerance`` shoulder widths.
    """
    errors = joint_errors(frame, truth)
    return errors is not None and bool(np.all(errors[KEY_JOINTS] < tolerance * scale(truth)))


def size(truth: ArrayLike) -> float:
    """A person's size for error tolerances (radians).

    Shoulder width, or the neck's length when more.

    Shoulder width alone vanishes for people in profile, so a tolerance
    based on it would ask for sub-pixel accuracy exactly where MediaPipe is
    least sure.
    """
    kp = np.asarray(truth, np.float64)
    shoulders = uv_to_ray(kp[KEY_JOINTS[1:], :2])
    mid = shoulders.sum(axis=0)
    neck = float(angle_between(uv_to_ray(kp[KEY_JOINTS[0], :2]), mid / np.linalg.norm(mid)))
    return max(scale(kp), neck)


def match(frame, truths, tolerance=0.5):
    """``(detection row or None per truth, unmatched detection rows)``.

    One-to-one, closest pairs first.

    A pair matches when the truth's key joints (nose and shoulders; those a
    crop hid, visibility 0, are skipped) lie within ``tolerance`` times its
    :func:`size` of the detection's. ``None`` truths (nobody there) match nothing.
    """
    rows = [None] * len(truths)
    present = [k for k, t in enumerate(truths) if t is not None]
    if not len(frame) or not present:
        return rows, list(range(len(frame)))
    rays = uv_to_ray(frame.keypoints[:, KEY_JOINTS, :2])
    cost = np.full((len(present), len(frame)), np.inf)
    for i, k in enumerate(present):
        truth = np.asarray(truths[k], np.float64)
        keys = [j for j in KEY_JOINTS if truth[j, 2] > 0] or KEY_JOINTS
        cols = [KEY_JOINTS.index(j) for j in keys]
        errors = angle_between(rays[:, cols], uv_to_ray(truth[keys, :2])[None]) / (
            tolerance * size(truth)
        )
        cost[i] = np.where(errors.max(axis=1) < 1, errors.mean(axis=1), np.inf)
    used = set()
    for i, j in zip(*np.unravel_index(np.argsort(cost, axis=None), cost.shape)):
        if not np.isfinite(cost[i, j]):
            break
        if rows[present[i]] is None and j not in used:
            rows[present[i]] = int(j)
            used.add(int(j))
    return rows, [j for j in range(len(frame)) if j not in used]
