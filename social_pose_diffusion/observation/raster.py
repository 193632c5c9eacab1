"""Skeletons in normalised equirect coordinates drawn onto images.

Observation rasters and previews.

- ``plotted`` observation: participants (a colour per body part) and the
  facilitator (red) drawn on a white 128x128 equirectangular canvas (u over
  the width, the band of v where seated people appear over the height);
- ``raw`` observation: the camera frame resized to 128x128;
- :func:`draw_skeleton`: one person onto a camera frame for previews.
"""

from collections.abc import Iterator

import cv2
import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import BONES, JOINT, JOINT_NAMES, NUM_JOINTS, wrap_u

IMAGE_SIZE = 128
PLOT_BAND = (
    0.35,
    0.75,
)  # v plotted: 27 deg above to 45 deg below the horizon, where seated people appear
SUBPIXEL_BITS = (
    4  # plotted at 1/16 pixel, anti-aliased: motions smaller than a pixel still change the image
)
FACILITATOR_COLOUR = (0, 0, 255)
# Participants' joints (and the bone to each from its parent) in BGR, one colour per body part as
# keypoint renderers draw them: head purple, left arm blue, right arm green/yellow, shoulders
# black, hips grey.
_PART = {
    'nose': (0, 0, 0),
    'eye': (160, 0, 120),
    'ear': (220, 0, 220),
    'shoulder': (0, 0, 0),
    'left_elbow': (255, 140, 0),
    'left_wrist': (255, 0, 0),
    'right_elbow': (0, 170, 0),
    'right_wrist': (0, 200, 220),
    'hip': (130, 130, 130),
}
PART_COLOURS = [_PART.get(name, _PART.get(name.split('_')[-1])) for name in JOINT_NAMES]


NECK = ((JOINT['nose'], JOINT['left_shoulder']), (JOINT['nose'], JOINT['right_shoulder']))


def seam_copies(
    u: ArrayLike, width: int, anchor: float, within: ArrayLike | None = None, margin: float = 0.0
) -> Iterator[np.ndarray]:
    """Pixel columns of normalised ``u`` for every copy of a person that reaches the image.

    The u are unwrapped around ``anchor`` so a person stays in one piece; a person across the
    seam comes out twice, once at each edge. ``within`` (a mask) picks the points that must
    reach the image, ``margin`` (pixels) how far outside still counts.
    """
    x = (anchor + wrap_u(np.asarray(u, np.float64) - anchor)) * width
    inside = x if within is None else x[np.asarray(within, bool)]
    for shift in (-width, 0, width):
        if (inside + shift).max() >= -margin and (inside + shift).min() < width + margin:
            yield x + shift


def draw_skeleton(
    img: np.ndarray,
    keypoints: ArrayLike,
    colour: tuple[int, int, int],
    thickness: int = 2,
    radius: int = 3,
    min_conf: float = 0.05,
) -> np.ndarray:
    """Draw one person's (J, 3) or (J, 2) keypoints; a person across the seam on both edges."""
    kp = np.asarray(keypoints, np.float64)
    seen = kp[:, 2] > min_conf if kp.shape[1] > 2 else np.ones(len(kp), bool)
    if not seen.any():
        return img
    h, w = img.shape[:2]
    y = kp[:, 1] * h
    for x in seam_copies(kp[:, 0], w, kp[seen, 0][0], seen):
        pts = np.stack([x, y], -1).round().astype(int)
        for a, b in BONES + NECK:
            if seen[a] and seen[b]:
                cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, thickness, cv2.LINE_AA)
        for j in np.flatnonzero(seen):
            cv2.circle(img, tuple(pts[j]), radius, colour, -1, cv2.LINE_AA)
    return img


def plot_people(
    participants: ArrayLike, facilitator_pose: ArrayLike, size: int = IMAGE_SIZE
) -> np.ndarray:
    """A white ``size`` x ``size`` BGR image with every person's skeleton.

    ``participants`` is ``(P, J, 3)``: u over the whole width, v over :data:`PLOT_BAND` top to
    bottom; a person across the seam is drawn on both edges. Lines and joints are anti-aliased
    at sub-pixel positions.
    """
    img = np.full((size, size, 3), 255, np.uint8)
    people = [(p, PART_COLOURS) for p in np.asarray(participants, np.float64)]
    fac = np.concatenate(
        [np.asarray(facilitator_pose, np.float64)[:, :2], np.ones((NUM_JOINTS, 1))], -1
    )
    top, bottom = PLOT_BAND
    one = 1 << SUBPIXEL_BITS
    for person, colours in people + [(fac, [FACILITATOR_COLOUR] * NUM_JOINTS)]:
        seen = person[:, 2] > 0
        if not seen.any():
            continue
        y = (person[:, 1] - top) / (bottom - top) * size
        for x in seam_copies(person[:, 0], size, person[seen, 0][0], seen):
            px = np.round(np.stack([x, y], -1) * one).astype(int)
            for a, b in BONES:
                if seen[a] and seen[b]:
                    cv2.line(
                        img, tuple(px[a]), tuple(px[b]), colours[b], 1, cv2.LINE_AA, SUBPIXEL_BITS
                    )
            for j in np.flatnonzero(seen):
                cv2.circle(img, tuple(px[j]), one, colours[j], -1, cv2.LINE_AA, SUBPIXEL_BITS)
    return img


def resize_frame(bgr: ArrayLike, size: int = IMAGE_SIZE) -> np.ndarray:
    """The camera frame at ``size`` x ``size`` (area interpolation)."""
    return cv2.resize(np.asarray(bgr), (size, size), interpolation=cv2.INTER_AREA)
