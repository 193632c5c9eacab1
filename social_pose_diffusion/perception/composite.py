"""Synthetic 360 scenes from real photos.

A photo pasted into an equirectangular frame as a perspective view.

Used by the tests, the benchmark and the recall measurement: a photo placed
as ``View(u, v, fov_deg)`` has known ground truth, since a point at normalised
photo coordinates ``xy`` lands at ``view.to_uv(xy)``.
"""

import cv2
import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.perception.equirect import View


def blank_panorama(height: int = 960, grey: int = 110) -> np.ndarray:
    """A plain H x 2H BGR canvas."""
    return np.full((height, 2 * height, 3), grey, np.uint8)


def place_photo(
    pano: np.ndarray, photo: np.ndarray, u: float, v: float = 0.5, fov_deg: float = 40.0
) -> View:
    """Paste ``photo`` (BGR, any aspect) in place into ``pano``; returns the View.

    The view is centred on (u, v).

    ``fov_deg`` is the photo's horizontal field of view; a non-square photo
    is padded square (the view's coordinates are those of the padded square).
    """
    h, w = photo.shape[:2]
    side = max(h, w)
    square = cv2.copyMakeBorder(
        photo,
        (side - h) // 2,
        side - h - (side - h) // 2,
        (side - w) // 2,
        side - w - (side - w) // 2,
        cv2.BORDER_CONSTANT,
    )
    inside = np.zeros((side, side), np.uint8)
    inside[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = 255
    view = View(float(u) % 1.0, float(v), float(fov_deg) * side / w, side)
    ph, pw = pano.shape[:2]
    grid = np.stack(np.meshgrid((np.arange(pw) + 0.5) / pw, (np.arange(ph) + 0.5) / ph), axis=-1)
    xy, front = view.from_uv(grid)
    map_x = np.where(front, xy[..., 0] * side - 0.5, -1).astype(np.float32)
    map_y = np.where(front, xy[..., 1] * side - 0.5, -1).astype(np.float32)
    pixels = cv2.remap(square, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.remap(inside, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 127
    pano[mask] = pixels[mask]
    return view


def photo_to_uv(view: View, photo_shape: tuple[int, ...], xy: ArrayLike) -> np.ndarray:
    """Equirect (u, v) of normalised coordinates ``xy``.

    ``xy`` are coordinates of a photo placed by :func:`place_photo`.
    """
    h, w = photo_shape[:2]
    side = max(h, w)
    pixels = np.asarray(xy, dtype=np.float64) * (w, h) + ((side - w) // 2, (side - h) // 2)
    return view.to_uv(pixels / side)


def ring_scene(photos, count, height=960, seed=0, fov_deg=40.0):
    """``count`` photos (cycled) evenly around the horizon of a fresh panorama.

    The start azimuth is random.

    Each is at most ``fov_deg`` wide and at most 90% of the spacing, so
    neighbours sit close without covering each other. Returns the panorama
    and ``[(photo index, View)]``.
    """
    rng = np.random.default_rng(seed)
    pano = blank_panorama(height)
    fov = min(fov_deg, 0.9 * 360.0 / count)
    start = rng.uniform()
    placed = []
    for k in range(count):
        index = k % len(photos)
        view = place_photo(
            pano,
            photos[index],
            start + k / count,
            0.5 + rng.uniform(-0.02, 0.02),
            fov * rng.uniform(0.85, 1.0),
        )
        placed.append((index, view))
    return pano, placed
