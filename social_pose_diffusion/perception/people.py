"""Where a person is on the sphere, and whether two keypoint sets are the same person."""

import cv2
import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import JOINT, UPPER_BODY, tangent_offset
from social_pose_diffusion.perception.equirect import angle_between, ray_to_uv, uv_to_ray

SEEN = 0.5  # a joint counts as seen at this confidence
MIN_SCALE = np.radians(2.0)
UPPER = list(UPPER_BODY)
INSIDE_FRACTION = 0.6
# centres more than this many shoulder widths apart are never one person (arms and hips
# included)
FAR = 5.0
SHOULDERS, HIPS = ('left_shoulder', 'right_shoulder'), ('left_hip', 'right_hip')


def centre(keypoints: ArrayLike) -> np.ndarray:
    """Unit ray through the mean of a person's seen upper-body joints.

    Any with confidence if none is seen.
    """
    kp = np.asarray(keypoints, dtype=np.float64)[UPPER, :]
    seen = kp[:, 2] >= SEEN
    if not seen.any():
        seen = kp[:, 2] > 0 if (kp[:, 2] > 0).any() else np.ones(len(kp), bool)
    rays = uv_to_ray(kp[seen, :2])
    mean = rays.mean(axis=0)
    return mean / max(np.linalg.norm(mean), 1e-12)


def scale(keypoints: ArrayLike) -> float:
    """A person's size on the sphere (radians): shoulder width, at least 2 degrees."""
    kp = np.asarray(keypoints, dtype=np.float64)
    shoulders = uv_to_ray(kp[[JOINT['left_shoulder'], JOINT['right_shoulder']], :2])
    return max(float(angle_between(shoulders[0], shoulders[1])), MIN_SCALE)


def inside(a: ArrayLike, b: ArrayLike) -> float:
    """Share of ``b``'s seen upper-body joints inside the bounding box of all of ``a``'s joints."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)[UPPER]
    b = b[b[:, 2] >= SEEN] if (b[:, 2] >= SEEN).any() else b
    origin = ray_to_uv(centre(a))
    box = tangent_offset(origin, a[a[:, 2] > 0, :2] if (a[:, 2] > 0).any() else a[:, :2])
    points = tangent_offset(origin, b[:, :2])
    lo, hi = box.min(axis=0), box.max(axis=0)
    return float(np.mean(np.all((points >= lo) & (points <= hi), axis=1)))


def head_in_torso(a: ArrayLike, b: ArrayLike) -> bool:
    """True when ``b``'s nose lies inside ``a``'s torso (shoulders and hips quadrilateral)."""
    a = np.asarray(a, dtype=np.float64)
    corners = [JOINT[n] for n in ('left_shoulder', 'right_shoulder', 'right_hip', 'left_hip')]
    origin = ray_to_uv(centre(a))
    quad = tangent_offset(origin, a[corners, :2]).astype(np.float32)
    nose = tangent_offset(origin, np.asarray(b, dtype=np.float64)[JOINT['nose'], :2])
    return cv2.pointPolygonTest(quad, (float(nose[0]), float(nose[1])), False) > 0


def same_person(a: ArrayLike, b: ArrayLike, fraction: float = 0.6) -> bool:
    """True when ``a`` and ``b`` are one person seen twice.

    Either their upper-body joints lie within ``fraction`` of a shoulder
    width of each other on average, or most of one's joints fall inside the
    other's bounding box, or one's head lies in the other's torso (a second
    pose hallucinated on a body).
    """
    size = max(scale(a), scale(b))
    if (
        angle_between(centre(a), centre(b)) > FAR * size
    ):  # cheap: bodies this far apart cannot overlap
        return False
    limit = fraction * size
    ua = np.asarray(a, dtype=np.float64)[UPPER]
    ub = np.asarray(b, dtype=np.float64)[UPPER]
    both = (ua[:, 2] >= SEEN) & (ub[:, 2] >= SEEN)
    rows = both if both.sum() >= 3 else slice(None)
    gap = float(np.mean(angle_between(uv_to_ray(ua[rows, :2]), uv_to_ray(ub[rows, :2]))))
    return (
        gap < limit
        or max(inside(a, b), inside(b, a)) >= INSIDE_FRACTION
        or head_in_torso(a, b)
        or head_in_torso(b, a)
    )


def unique(people, key):
    """Indices of ``people`` kept after dropping duplicates, best ``key`` first.

    ``people`` is a sequence of (J, 3).
    """
    kept = []
    for i in sorted(range(len(people)), key=key):
        if not any(same_person(people[i], people[j]) for j in kept):
            kept.append(i)
    return kept


def _midpoint(kp, names):
    """Equirect (u, v) of the mean ray of the named joints."""
    return ray_to_uv(uv_to_ray(kp[[JOINT[n] for n in names], :2]).sum(axis=0))


def _tilt_deg(below, above):
    """Angle of ``above`` seen from ``below`` away from straight up (degrees).

    Measured on the local tangent plane.
    """
    x, y = tangent_offset(below, above)
    return float(np.degrees(np.arctan2(abs(x), -y)))


def upright(keypoints: ArrayLike, max_tilt_deg: float = 120.0) -> bool:
    """False for an upside-down pose.

    Upside down: the nose more than ``max_tilt_deg`` from straight above the shoulders.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    return _tilt_deg(_midpoint(kp, SHOULDERS), kp[JOINT['nose'], :2]) <= max_tilt_deg


def torso_upright(keypoints: ArrayLike, max_tilt_deg: float = 60.0) -> bool:
    """True when the shoulders sit within ``max_tilt_deg`` of straight above the hips.

    Sitting or standing.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    return _tilt_deg(_midpoint(kp, HIPS), _midpoint(kp, SHOULDERS)) <= max_tilt_deg
