"""Drawing skeletons given in normalised equirect coordinates onto images (seam-aware)."""
import cv2
import numpy as np

from .skeleton import BONES, JOINT, wrap_u

NECK = ((JOINT['nose'], JOINT['left_shoulder']), (JOINT['nose'], JOINT['right_shoulder']))


def draw_skeleton(img, keypoints, colour, thickness=2, radius=3, min_conf=0.05):
    """Draw one person's (J, 3) or (J, 2) keypoints; a person across the seam is drawn on both edges."""
    kp = np.asarray(keypoints, np.float64)
    seen = kp[:, 2] > min_conf if kp.shape[1] > 2 else np.ones(len(kp), bool)
    if not seen.any():
        return img
    h, w = img.shape[:2]
    anchor = kp[seen, 0][0]
    x = (anchor + wrap_u(kp[:, 0] - anchor)) * w
    y = kp[:, 1] * h
    for shift in (-w, 0, w):
        if (x[seen] + shift).max() < 0 or (x[seen] + shift).min() >= w:
            continue
        pts = np.stack([x + shift, y], -1).round().astype(int)
        for a, b in BONES + NECK:
            if seen[a] and seen[b]:
                cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, thickness, cv2.LINE_AA)
        for j in np.flatnonzero(seen):
            cv2.circle(img, tuple(pts[j]), radius, colour, -1, cv2.LINE_AA)
    return img
