"""Scoring extracted people against known ground truth (composites of real photos)."""
import numpy as np

from social_pose_diffusion.core.skeleton import JOINT
from social_pose_diffusion.perception.equirect import angle_between, uv_to_ray
from social_pose_diffusion.perception.people import scale

KEY_JOINTS = [JOINT[n] for n in ('nose', 'left_shoulder', 'right_shoulder')]


def joint_errors(frame, truth):
    """Angular error (radians) of every joint of the detected person nearest to ``truth`` (J, >=2); None if nobody."""
    if not len(frame):
        return None
    errors = angle_between(uv_to_ray(frame.keypoints[..., :2]), uv_to_ray(np.asarray(truth)[None, :, :2]))
    return errors[int(np.argmin(errors[:, KEY_JOINTS].mean(axis=1)))]


def found(frame, truth, tolerance=0.5):
    """True when someone's nose and shoulders lie within ``tolerance`` shoulder widths of ``truth``'s."""
    errors = joint_errors(frame, truth)
    return errors is not None and bool(np.all(errors[KEY_JOINTS] < tolerance * scale(truth)))
