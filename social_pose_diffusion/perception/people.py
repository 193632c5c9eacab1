"""Where a person is on the sphere, and whether two keypoint sets are the same person."""
import numpy as np

from ..skeleton import JOINT, UPPER_BODY as _UPPER

UPPER_BODY = list(_UPPER)
from .equirect import angle_between, uv_to_ray

SEEN = 0.5  # a joint counts as seen at this confidence
MIN_SCALE = np.radians(2.0)


def centre(keypoints):
    """Unit ray through the mean of a person's seen upper-body joints (any with confidence if none is seen)."""
    kp = np.asarray(keypoints, dtype=np.float64)[UPPER_BODY, :]
    seen = kp[:, 2] >= SEEN
    if not seen.any():
        seen = kp[:, 2] > 0 if (kp[:, 2] > 0).any() else np.ones(len(kp), bool)
    rays = uv_to_ray(kp[seen, :2])
    mean = rays.mean(axis=0)
    return mean / max(np.linalg.norm(mean), 1e-12)


def scale(keypoints):
    """A person's size on the sphere (radians): shoulder width, at least 2 degrees."""
    kp = np.asarray(keypoints, dtype=np.float64)
    shoulders = uv_to_ray(kp[[JOINT['left_shoulder'], JOINT['right_shoulder']], :2])
    return max(float(angle_between(shoulders[0], shoulders[1])), MIN_SCALE)


def same_person(a, b, fraction=0.35):
    """True when the upper-body joints of ``a`` and ``b`` lie within ``fraction`` of a shoulder width on average."""
    limit = fraction * max(scale(a), scale(b))
    a = np.asarray(a, dtype=np.float64)[UPPER_BODY]
    b = np.asarray(b, dtype=np.float64)[UPPER_BODY]
    both = (a[:, 2] >= SEEN) & (b[:, 2] >= SEEN)
    rows = both if both.sum() >= 3 else slice(None)
    gap = float(np.mean(angle_between(uv_to_ray(a[rows, :2]), uv_to_ray(b[rows, :2]))))
    return gap < limit


def unique(people, key):
    """Indices of ``people`` (sequence of (J, 3)) kept after dropping duplicates, best ``key`` first."""
    kept = []
    for i in sorted(range(len(people)), key=key):
        if not any(same_person(people[i], people[j]) for j in kept):
            kept.append(i)
    return kept
