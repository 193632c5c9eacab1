"""Finding people: the pose detector over overlapping views around the horizon.

Repeated with found faces masked.

MediaPipe's detector is anchored on faces and keeps the strongest of
neighbouring detections, so a view holding two neighbours often reports one.
The faces of people already tracked are painted over with the view's mean
colour first; after each pass the newly found faces are painted over too and
the detector runs again, so a neighbour comes out in the next pass.
Candidates seen in several overlapping views are merged by position on the
sphere.
"""

from collections.abc import Iterable

import cv2
import numpy as np

from social_pose_diffusion.perception.equirect import View, angle_between, uv_to_ray
from social_pose_diffusion.perception.roi import Roi

HEAD_JOINTS = 5  # nose, eyes, ears
FACE_MARGIN = 0.25  # masked face box grows by this fraction on each side
MERGE_FRACTION = 0.35  # candidates closer than this fraction of the ROI radius are one person


def ring_views(fov_deg: float, size: int, step_deg: float, pitch_deg: float = 0.0) -> list[View]:
    """Views around the horizon, at most ``step_deg`` apart.

    They are tilted by ``pitch_deg``, up positive.
    """
    count = int(np.ceil(360.0 / step_deg - 1e-9))
    return [
        View((0.5 + k / count) % 1.0, 0.5 - pitch_deg / 180.0, fov_deg, size) for k in range(count)
    ]


def _mask_faces(rgb, boxes):
    """A copy of a square view with the (grown) boxes painted in its mean colour."""
    out = rgb.copy()
    size = rgb.shape[0]
    fill = rgb.reshape(-1, 3).mean(axis=0)
    for x0, y0, x1, y1 in boxes:
        mx, my = (x1 - x0) * FACE_MARGIN, (y1 - y0) * FACE_MARGIN
        a = np.clip(np.array([x0 - mx, y0 - my]) * size, 0, size).astype(int)
        b = np.clip(np.array([x1 + mx, y1 + my]) * size, 0, size).astype(int)
        out[a[1] : b[1], a[0] : b[0]] = fill
    return out


def face_boxes(view, people):
    """Boxes around the head joints of known people's (J, 3) keypoints.

    Boxes are (x0, y0, x1, y1), normalised to ``view``.
    """
    boxes = []
    for keypoints in people:
        xy, front = view.from_uv(np.asarray(keypoints)[:HEAD_JOINTS, :2])
        if not front.all():
            continue
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        pad = 0.5 * (hi - lo).max()
        if (hi + pad > 0).all() and (lo - pad < 1).all():
            boxes.append((*(lo - pad), *(hi + pad)))
    return boxes


def detect_in_view(detector, pano, view, passes, known=()):
    """``[(score, Roi)]`` of new people the detector finds in one view.

    At most ``passes`` masked passes.

    ``known`` holds the (J, 3) keypoints of people already found, whose faces are masked first.
    """
    rgb = cv2.cvtColor(view.render(pano), cv2.COLOR_BGR2RGB)
    found, boxes = [], face_boxes(view, known)
    if boxes:
        rgb = _mask_faces(rgb, boxes)
    for _ in range(passes):
        new = detector(rgb)
        if not new:
            break
        for score, kps, box in new:
            centre, scale = view.to_uv(kps[:2])
            found.append((score, Roi.from_points(centre, scale)))
            boxes.append(box)
        rgb = _mask_faces(rgb, boxes)
    return found


def merge(
    candidates: Iterable[tuple[float, Roi]], occupied: Iterable[Roi] = ()
) -> list[tuple[float, Roi]]:
    """Best-scoring candidates ``[(score, Roi)]``.

    Those kept are not near each other or near an ``occupied`` Roi.
    """
    kept = list(occupied)
    out = []
    for score, roi in sorted(candidates, key=lambda c: -c[0]):
        ray = uv_to_ray((roi.u, roi.v))
        if all(
            angle_between(ray, uv_to_ray((o.u, o.v))) > MERGE_FRACTION * max(roi.radius, o.radius)
            for o in kept
        ):
            kept.append(roi)
            out.append((score, roi))
    return out
