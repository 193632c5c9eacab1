"""Input checks shared by the backends: what counts as a usable panorama or keypoint frame."""

import numpy as np

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import NUM_JOINTS

MIN_HEIGHT = 64
ASPECT_TOLERANCE = 0.02


class PerceptionError(ValueError):
    """An input the extractor cannot use; the message says what was wrong."""


def check_options(**ranges: tuple[float, float, float]) -> None:
    """Raise :class:`PerceptionError` for an option outside its range.

    ``name=(value, low, high)``, inclusive.
    """
    for name, (value, low, high) in ranges.items():
        if not low <= value <= high:
            raise PerceptionError(f'option {name}={value!r} is outside [{low}, {high}]')


def check_panorama(bgr: np.ndarray) -> np.ndarray:
    """``bgr`` as a contiguous array.

    :class:`PerceptionError` unless it is a uint8 H x 2H x 3 equirectangular image.
    """
    if not isinstance(bgr, np.ndarray):
        raise PerceptionError(f'expected a numpy BGR image, got {type(bgr).__name__}')
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        hint = ' (grayscale? convert with cv2.COLOR_GRAY2BGR)' if bgr.ndim == 2 else ''
        raise PerceptionError(f'expected an H x W x 3 BGR image, got shape {bgr.shape}{hint}')
    if bgr.dtype != np.uint8:
        raise PerceptionError(f'expected uint8 pixels, got {bgr.dtype}')
    h, w = bgr.shape[:2]
    if h < MIN_HEIGHT:
        raise PerceptionError(
            f'image {w}x{h} is too small: an equirectangular frame needs at least '
            f'{2 * MIN_HEIGHT}x{MIN_HEIGHT} pixels'
        )
    if abs(w - 2 * h) > ASPECT_TOLERANCE * w:
        raise PerceptionError(
            f'image {w}x{h} is not equirectangular: width must be twice the height'
        )
    return np.ascontiguousarray(bgr)


def clean_keypoints(frame: GroupFrame) -> GroupFrame:
    """Keypoints of a :class:`GroupFrame` made safe.

    u wrapped, bad joints zeroed, empty people dropped.

    A joint is bad when any value is NaN/inf, v lies outside [0, 1] or the
    confidence is not positive; confidences are clipped to [0, 1]. A person
    with no good joint is dropped. Raises :class:`PerceptionError` when the
    arrays have the wrong shape.
    """
    kp = np.asarray(frame.keypoints, dtype=np.float64)
    ids = np.asarray(frame.ids)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 3) or len(ids) != len(kp):
        raise PerceptionError(
            f'expected ids (N,) and keypoints (N, {NUM_JOINTS}, 3), got {ids.shape} and {kp.shape}'
        )
    good = np.isfinite(kp).all(-1) & (kp[..., 1] >= 0) & (kp[..., 1] <= 1) & (kp[..., 2] > 0)
    kp = np.where(good[..., None], kp, 0.0)
    kp[..., 0] %= 1.0
    kp[..., 2] = np.clip(kp[..., 2], 0.0, 1.0)
    keep = good.any(-1)
    return GroupFrame(int(frame.stamp_ns), ids[keep].astype(np.int32), kp[keep].astype(np.float32))
