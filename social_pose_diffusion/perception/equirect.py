"""Equirectangular geometry: normalised (u, v) <-> unit rays <-> pixels of a perspective view.

A :class:`View` is a square pinhole camera at the sphere's centre looking at
(u, v), rolled by ``roll`` radians, ``fov_deg`` wide, ``size`` pixels. Its
remap grid into a W x H panorama is cached, so fixed views (discovery) cost
one ``cv2.remap``; views straddling the left/right seam sample across it.
View coordinates are normalised to [0, 1] across the view (MediaPipe's
convention), with pixel i's centre at (i + 0.5) / size.
"""

from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import unit_sphere, wrap_u

UP = np.array([0.0, 0.0, 1.0])


def uv_to_ray(uv: ArrayLike) -> np.ndarray:
    """Unit rays (camera frame, REP-103) of normalised equirect coordinates."""
    return unit_sphere(uv)


def ray_to_uv(ray: ArrayLike) -> np.ndarray:
    """Normalised equirect (u, v) of rays (need not be unit length); u in [0, 1)."""
    ray = np.asarray(ray, dtype=np.float64)
    azimuth = np.arctan2(ray[..., 1], ray[..., 0])
    polar = np.arctan2(np.linalg.norm(ray[..., :2], axis=-1), ray[..., 2])
    return np.stack([(0.5 - azimuth / (2 * np.pi)) % 1.0, polar / np.pi], axis=-1)


def angle_between(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Angle (radians) between rays ``a`` and ``b`` (broadcasting)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    # The cross product by components: np.cross's axis handling costs several times the
    # arithmetic on the few rays perception compares (thousands of calls a frame).
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    cross = np.sqrt((ay * bz - az * by) ** 2 + (az * bx - ax * bz) ** 2 + (ax * by - ay * bx) ** 2)
    return np.arctan2(cross, ax * bx + ay * by + az * bz)


def tangent_basis(forward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, down) unit vectors of an upright image plane facing ``forward``."""
    right = np.cross(forward, UP)
    norm = np.linalg.norm(right)
    right = np.array([0.0, -1.0, 0.0]) if norm < 1e-9 else right / norm
    return right, np.cross(forward, right)


@dataclass(frozen=True)
class View:
    """A square perspective view of the sphere centred on (u, v)."""

    u: float
    v: float
    fov_deg: float
    size: int
    roll: float = 0.0

    @cached_property
    def axes(self):
        """(forward, right, down) unit vectors of the view in the camera frame.

        Computed once per view: every projection to and from the view needs them.
        """
        forward = uv_to_ray((self.u, self.v))
        right, down = tangent_basis(forward)
        c, s = np.cos(self.roll), np.sin(self.roll)
        return forward, c * right + s * down, -s * right + c * down

    @property
    def half_tan(self):
        """tan(fov / 2): the view's half-width on the unit image plane."""
        return float(np.tan(np.radians(self.fov_deg) / 2))

    def to_rays(self, xy):
        """Rays through normalised view coordinates ``xy`` (..., 2)."""
        forward, right, down = self.axes
        plane = (np.asarray(xy, dtype=np.float64) * 2 - 1) * self.half_tan
        return forward + plane[..., :1] * right + plane[..., 1:2] * down

    def to_uv(self, xy):
        """Equirect (u, v) of normalised view coordinates ``xy`` (..., 2)."""
        return ray_to_uv(self.to_rays(xy))

    def from_uv(self, uv):
        """Normalised view coordinates of equirect points.

        Also a mask of those in front of the view.
        """
        forward, right, down = self.axes
        ray = uv_to_ray(uv)
        depth = ray @ forward
        safe = np.where(depth > 1e-6, depth, 1e-6)
        xy = np.stack([ray @ right, ray @ down], axis=-1) / safe[..., None] / self.half_tan
        return (xy + 1) / 2, depth > 1e-6

    def render(self, pano):
        """The view's pixels sampled from an equirectangular image (bilinear, seam-aware)."""
        h, w = pano.shape[:2]
        map_x, map_y = _grid(self, w, h)
        return cv2.remap(pano, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


GRID_KNOT_SPACING = 16  # view pixels between exactly projected grid knots; bilinear in between


@lru_cache(maxsize=8)
def _interpolation(size):
    """Knots of a view ``size`` pixels wide; per pixel its left knot and the right one's weight.

    Linear interpolation between neighbouring knots by indexing, not by a
    (size, knots) matrix product: that product is large enough for OpenBLAS to
    run it on two threads, and between the node's occasional new views its
    second thread spins (300 such products 3 ms apart: 1.16 s of CPU against
    0.11 s on one thread; in the node 0.07-0.18 of its 0.7-0.8 cores).
    """
    knots = np.linspace(0, size - 1, int(np.ceil((size - 1) / GRID_KNOT_SPACING)) + 1)
    pixels = np.arange(size, dtype=np.float64)
    left = np.clip(np.searchsorted(knots, pixels, side='right') - 1, 0, len(knots) - 2)
    right_weight = (pixels - knots[left]) / (knots[left + 1] - knots[left])
    return knots, left, right_weight


def _interpolate(values, left, right_weight):
    """(size, size) bilinear interpolation of (knots, knots) ``values``: rows, then columns.

    In float64 like the projection: the float32 maps come out as the matrix
    product made them (identical on 200 views checked; float32 arithmetic here
    is faster but moves them by up to 3e-4 px, enough to flip a borderline
    detection in the single-frame benchmark).
    """
    rows = values[left] + (values[left + 1] - values[left]) * right_weight[:, None]
    columns = np.take(rows, left, axis=1)  # C-contiguous, as cv2.remap wants its maps
    return columns + (np.take(rows, left + 1, axis=1) - columns) * right_weight


@lru_cache(maxsize=128)
def _grid(view, width, height):
    """Panorama pixel coordinates (map_x, map_y, float32) of every view pixel.

    The projection is exact on a coarse grid of knots and bilinear between
    them (under a view pixel off for views up to 110 degrees wide); u is
    unwrapped around the view centre before interpolating so the seam stays sharp.
    """
    knots, left, right_weight = _interpolation(view.size)
    centres = (knots + 0.5) / view.size
    uv = view.to_uv(np.stack(np.meshgrid(centres, centres), axis=-1))
    x = _interpolate((view.u + wrap_u(uv[..., 0] - view.u)) * width - 0.5, left, right_weight)
    y = _interpolate(uv[..., 1] * height - 0.5, left, right_weight)
    map_x = x % width
    return map_x.astype(np.float32), np.clip(y, 0, height - 1).astype(np.float32)
