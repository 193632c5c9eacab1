"""A person's region of interest on the sphere.

MediaPipe's rotated square ROI as a perspective view.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.perception.equirect import View, angle_between, tangent_basis, uv_to_ray

ROI_SCALE = 1.25  # MediaPipe pose: square side = 2 * 1.25 * |centre -> scale point|
MAX_FOV_DEG = 120.0
# A tracked ROI only moves when the new one differs by more than this (fraction of the radius,
# radians of roll).
HOLD_SHIFT, HOLD_ROLL = 0.1, np.radians(5)


@dataclass(frozen=True)
class Roi:
    """Centred on (u, v), rolled so the body is upright.

    ``half_tan`` = tan(half the view's width).
    """

    u: float
    v: float
    roll: float
    half_tan: float

    @property
    def radius(self) -> float:
        """Angle (radians) from the centre to the scale point: about the person's height."""
        return float(np.arctan(self.half_tan / ROI_SCALE))

    def view(self, size: int) -> View:
        """The perspective view the landmark model sees."""
        return View(
            self.u, self.v, float(np.degrees(2 * np.arctan(self.half_tan))), size, self.roll
        )

    def follow(self, new: 'Roi') -> 'Roi':
        """``new``, or ``self`` when ``new`` is within the hold tolerances.

        A still person's ROI stops jittering.
        """
        shift = angle_between(uv_to_ray((self.u, self.v)), uv_to_ray((new.u, new.v)))
        roll = abs((new.roll - self.roll + np.pi) % (2 * np.pi) - np.pi)
        size = abs(np.log(new.half_tan / self.half_tan))
        return (
            self
            if shift < HOLD_SHIFT * self.radius and roll < HOLD_ROLL and size < HOLD_SHIFT
            else new
        )

    @classmethod
    def from_points(cls, centre_uv: np.ndarray | Sequence[float], scale_uv: ArrayLike) -> 'Roi':
        """MediaPipe's alignment: ``scale_uv`` straight above ``centre_uv``.

        The side is 2.5x their distance.
        """
        centre, scale = uv_to_ray(centre_uv), uv_to_ray(scale_uv)
        right, down = tangent_basis(centre)
        roll = float(np.arctan2(scale @ right, -(scale @ down)))
        alpha = float(np.clip(angle_between(centre, scale), np.radians(1), np.radians(80)))
        half_tan = min(ROI_SCALE * np.tan(alpha), np.tan(np.radians(MAX_FOV_DEG) / 2))
        u, v = (float(x) for x in centre_uv)
        return cls(u % 1.0, v, roll, float(half_tan))


@dataclass(frozen=True)
class RoiTrack:
    """A tracked person's ROIs.

    Where to look next, and the last one that found them (the fallback).
    """

    next: Roi
    good: Roi
