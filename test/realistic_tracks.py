"""Real-like keypoint tracks made from a simulated session: what another detector on a stitched
panorama gives.

15 fps, pixel noise, per-joint confidences, no ears but a neck and knees in
another joint order, facilitator gaps of a few frames and one long one, a
track swap between two participants, occluded wrists and a few points
above the image top; returned with the truth they were made from.
"""

import numpy as np

from social_pose_diffusion.core.skeleton import JOINT
from social_pose_diffusion.sources.sim import simulate

ORDER = (
    'neck',
    'nose',
    'right_eye',
    'left_eye',
    'right_shoulder',
    'left_shoulder',
    'right_elbow',
    'left_elbow',
    'right_wrist',
    'left_wrist',
    'right_hip',
    'left_hip',
    'right_knee',
    'left_knee',
)
WIDTH, HEIGHT, VFOV = 2400, 600, 100.0
FACILITATOR_TRACK = 7


def uv_to_pixels(uv, width=WIDTH, height=HEIGHT, vfov=VFOV):
    """Inverse of the cylindrical projection of
    :class:`~social_pose_diffusion.sources.importers.Projection`."""
    f = 0.5 * height / np.tan(np.radians(vfov) / 2)
    return uv[..., 0] * width, 0.5 * height - f * np.tan((0.5 - uv[..., 1]) * np.pi)


def _drift(rng, shape, sigma, rho=0.97):
    """Slowly varying offsets (AR(1) along the first axis) of stationary std ``sigma``: a smoothed
    tracker's error."""
    out = np.zeros(shape)
    out[0] = rng.normal(0, sigma, shape[1:])
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + rng.normal(0, sigma * np.sqrt(1 - rho**2), shape[1:])
    return out


def make(seconds=30.0, seed=0, style='teacher', participants=4, noise_px=0.3, drift_px=1.5):
    """``(coco dict, truth Session at 15 fps, facts)``; ``facts`` counts what was left out or put
    outside.

    Detector error: white jitter of ``noise_px`` plus a slowly drifting offset of ``drift_px``
    per joint.
    """
    rng = np.random.default_rng(seed)
    truth = simulate(style, participants, seconds, 30.0, seed)
    keep = np.arange(0, len(truth), 2)
    people = np.concatenate([truth.facilitator[keep][:, None], truth.participants[keep]], 1)
    tracks = np.tile(np.r_[FACILITATOR_TRACK, 11 + np.arange(participants)], (len(keep), 1))
    swap = slice(len(keep) // 3, len(keep) // 3 + 60)  # two participants' ids swap for 4 s
    tracks[swap, 1], tracks[swap, 2] = tracks[swap, 2].copy(), tracks[swap, 1].copy()
    gaps = np.zeros(len(keep), bool)
    for start in rng.choice(np.arange(20, len(keep) - 40), 6, replace=False):
        gaps[start : start + rng.integers(2, 5)] = True
    gaps[len(keep) // 2 : len(keep) // 2 + 15] = True  # one second without the facilitator
    x, y = uv_to_pixels(people[..., :2].astype(np.float64))
    x = x + rng.normal(0, noise_px, x.shape) + _drift(rng, x.shape, drift_px)
    y = y + rng.normal(0, noise_px, y.shape) + _drift(rng, y.shape, drift_px)
    conf = rng.uniform(0.6, 1.0, x.shape)
    occluded = rng.random(len(keep)) < 0.05
    conf[occluded, 0, JOINT['left_wrist']] = 0.0
    above = rng.random(x.shape) < 0.002
    y[above] = -rng.uniform(1, 20, above.sum())
    images, annotations = [], []
    for i in range(len(keep)):
        images.append({'id': 1000 + i, 'frame_id': i, 'width': WIDTH, 'height': HEIGHT})
        for p in range(people.shape[1]):
            if p == 0 and gaps[i]:
                continue
            kp = []
            for name in ORDER:
                if name in JOINT:
                    j = JOINT[name]
                    kp += [float(x[i, p, j]), float(y[i, p, j]), float(conf[i, p, j])]
                else:  # neck and knees: positions the importer must ignore
                    kp += [float(x[i, p, 5]), float(y[i, p, 5]) + 40.0, 0.9]
            annotations.append(
                {
                    'image_id': 1000 + i,
                    'track_id': int(tracks[i, p]),
                    'category_id': 1,
                    'keypoints': kp,
                    'score': 0.9,
                }
            )
    coco = {
        'images': images,
        'annotations': annotations,
        'categories': [{'id': 1, 'name': 'person', 'keypoints': list(ORDER)}],
    }
    written = np.ones(x.shape[:2], bool)
    written[gaps, 0] = False
    ours = np.array([JOINT[n] for n in ORDER if n in JOINT])
    facts = {
        'frames': len(keep),
        'facilitator_gaps': int(gaps.sum()),
        'outside': int((above & written[..., None] & (conf > 0))[..., ours].sum()),
        'kept': keep,
        'gaps': gaps,
        'occluded': occluded,
    }
    return coco, truth, facts
