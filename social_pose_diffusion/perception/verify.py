"""Is a detector candidate a person? Evidence from several cues.

Not one threshold on the pose flag.

The landmark model's pose flag drops for people in profile, turned away,
masked, with a hand over the mouth or half behind a laptop or a neighbour,
while their head and shoulders stay clearly placed. A candidate's evidence
mixes the flag (mean over its landmark passes), the detector's score and
the landmark visibility of head, shoulders and arms; it must also be
plausible: upright, torso over hips, not smaller than a far seated person.
Candidates just below the bar are tracked unconfirmed and become people when
the next frames find them again (temporal confirmation).
"""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.perception.people import torso_upright, upright

DEFAULT_MIN_CONFIDENCE = (
    0.5  # evidence that accepts a new person at once: the one default (node, extract)
)
HEAD, SHOULDERS, ARMS = slice(0, 5), slice(5, 7), slice(7, 11)
WEIGHTS = {'presence': 0.5, 'detector': 0.2, 'visibility': 0.3}
# Smallest ROI radius (about half a body's height) of a person: people 35 px tall in a 1280 x 640
# frame (10 deg) behind a laptop or half hidden get detector ROIs of 2.7-4.5 deg.
MIN_RADIUS = np.radians(2.5)
TENTATIVE_MARGIN = 0.2  # evidence this far below min_confidence: tracked unconfirmed


def visibility(keypoints: ArrayLike) -> float:
    """Mean landmark visibility of head, shoulders and arms (each part weighted alike)."""
    vis = np.asarray(keypoints)[:, 2]
    return float(np.mean([vis[HEAD].mean(), vis[SHOULDERS].mean(), vis[ARMS].mean()]))


def evidence(presence: float, detector_score: float, keypoints: ArrayLike) -> float:
    """Weighted evidence in [0, 1] that a candidate is a person (see :data:`WEIGHTS`)."""
    return (
        WEIGHTS['presence'] * float(presence)
        + WEIGHTS['detector'] * float(detector_score)
        + WEIGHTS['visibility'] * visibility(keypoints)
    )


def plausible(keypoints, roi):
    """An upright body (head over shoulders over hips) in an ROI no smaller than a far person's."""
    return roi.radius >= MIN_RADIUS and upright(keypoints) and torso_upright(keypoints)
