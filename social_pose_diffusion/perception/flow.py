"""Cheap keypoint updates between landmark inferences: optical flow in a person's view.

One landmark inference of ``pose_landmark_full`` costs 19-27 ms of CPU on
this 2-core machine, so 13 people updated 5 times a second would take 1.3-1.8
cores for landmarks alone. Between a person's landmark updates their
keypoints are moved instead by pyramidal Lucas-Kanade flow (about 1 ms) from
the view rendered at their last landmark update to the same view in the
current frame. Flow always starts from that reference, so no drift builds up
between landmark updates; points are checked forward and backward, and joints
flow cannot follow (hidden, unsure, failing the check) move with the median
of those it can. Flow measures where the body moved, not a new pose: the
landmark model still has to see each person now and then (``max_staleness_ms``).
"""

from dataclasses import dataclass

import cv2
import numpy as np

from social_pose_diffusion.perception.equirect import View
from social_pose_diffusion.perception.people import SEEN

FLOW_SIZE = 128  # px of the flow view (the landmark view is 256)
WINDOW = (15, 15)  # Lucas-Kanade window at FLOW_SIZE
LEVELS = 2
MAX_ROUND_TRIP_PX = 1.0  # a point tracked forward and back lands this close to where it began
MIN_POINTS = 3  # fewer followed joints than this: no flow update


@dataclass(frozen=True)
class FlowReference:
    """A person's view at their last landmark update and their keypoints then."""

    view: View
    gray: np.ndarray
    keypoints: np.ndarray  # (J, 3) equirect u, v, confidence


def _gray(pano: np.ndarray, view: View) -> np.ndarray:
    return cv2.cvtColor(view.render(pano), cv2.COLOR_BGR2GRAY)


def reference(pano: np.ndarray, view: View, keypoints: np.ndarray) -> FlowReference:
    """The reference for flow updates: ``view`` (any size: rendered at FLOW_SIZE) now."""
    view = View(view.u, view.v, view.fov_deg, FLOW_SIZE, view.roll)
    return FlowReference(view, _gray(pano, view), np.asarray(keypoints, np.float32))


def follow(pano: np.ndarray, ref: FlowReference) -> np.ndarray | None:
    """The reference keypoints moved by the flow to ``pano``; None when too few joints follow."""
    xy, front = ref.view.from_uv(ref.keypoints[:, :2])
    start = (xy * FLOW_SIZE - 0.5).astype(np.float32).reshape(-1, 1, 2)
    gray = _gray(pano, ref.view)
    ahead, found, _ = cv2.calcOpticalFlowPyrLK(
        ref.gray, gray, start, start.copy(), winSize=WINDOW, maxLevel=LEVELS
    )
    back, again, _ = cv2.calcOpticalFlowPyrLK(
        gray, ref.gray, ahead, start.copy(), winSize=WINDOW, maxLevel=LEVELS
    )
    inside = np.all((start >= 0) & (start <= FLOW_SIZE - 1), axis=2).ravel()
    good = (
        front
        & inside
        & (ref.keypoints[:, 2] >= SEEN)
        & found.ravel().astype(bool)
        & again.ravel().astype(bool)
        & (np.linalg.norm(back - start, axis=2).ravel() < MAX_ROUND_TRIP_PX)
    )
    if good.sum() < MIN_POINTS:
        return None
    moved = start[:, 0] + np.median(ahead[good, 0] - start[good, 0], axis=0)
    moved[good] = ahead[good, 0]
    uv = ref.view.to_uv((moved + 0.5) / FLOW_SIZE)
    return np.concatenate([uv, ref.keypoints[:, 2:]], axis=1).astype(np.float32)
