"""Equirectangular views: projections, seam handling, cached grids, MediaPipe-style ROIs."""

import numpy as np
import pytest

from social_pose_diffusion.perception.discovery import ring_views
from social_pose_diffusion.perception.equirect import (
    View,
    _grid,
    angle_between,
    ray_to_uv,
    uv_to_ray,
)
from social_pose_diffusion.perception.roi import ROI_SCALE, Roi


def test_uv_ray_round_trip_and_forward_axis():
    uv = np.array([[0.5, 0.5], [0.0, 0.3], [0.999, 0.7], [0.25, 0.5]])
    assert np.allclose(ray_to_uv(uv_to_ray(uv)), uv, atol=1e-9)
    assert np.allclose(
        uv_to_ray([0.5, 0.5]), [1, 0, 0], atol=1e-12
    )  # u = 0.5 is the camera's forward axis


@pytest.mark.parametrize(
    'view', [View(0.0, 0.5, 60, 128), View(0.97, 0.4, 40, 64, roll=0.7), View(0.5, 0.6, 100, 96)]
)
def test_view_coordinates_round_trip(view):
    xy = np.random.default_rng(0).uniform(-0.2, 1.2, (50, 2))
    back, front = view.from_uv(view.to_uv(xy))
    assert front.all() and np.allclose(back, xy, atol=1e-9)
    assert np.allclose(view.to_uv([0.5, 0.5]), [view.u, view.v])


def test_view_straddling_the_seam_samples_both_edges():
    h, w = 180, 360
    pano = np.zeros((h, w, 3), np.uint8)
    pano[:, : w // 2] = (0, 0, 200)  # left half red (u < 0.5)
    pano[:, w // 2 :] = (200, 0, 0)  # right half blue
    img = View(0.0, 0.5, 40, 64).render(pano)
    left, right = img[:, :28].reshape(-1, 3), img[:, 36:].reshape(-1, 3)
    assert (left == (200, 0, 0)).all()  # left of u = 0 is the right edge of the panorama
    assert (right == (0, 0, 200)).all()
    assert img.reshape(-1, 3).sum(axis=1).min() >= 190  # no black border anywhere


def test_coarse_grid_matches_exact_projection():
    view = View(0.02, 0.55, 60, 256, roll=0.2)
    map_x, map_y = _grid(view, 1920, 960)
    centres = (np.arange(256) + 0.5) / 256
    uv = view.to_uv(np.stack(np.meshgrid(centres, centres), axis=-1))
    dx = (map_x - (uv[..., 0] * 1920 - 0.5) + 960) % 1920 - 960
    dy = map_y - (uv[..., 1] * 960 - 0.5)
    assert np.abs(dx).max() < 0.3 and np.abs(dy).max() < 0.3
    assert _grid(view, 1920, 960)[0] is map_x  # cached
    # A view across the seam: x wrapped into the panorama, maps as cv2.remap takes them.
    map_x, map_y = _grid(View(0.995, 0.5, 30, 128), 1920, 960)
    assert 0 <= map_x.min() and map_x.max() <= 1920 and map_x.min() < 100 and map_x.max() > 1820
    for m in (map_x, map_y):
        assert m.dtype == np.float32 and m.flags['C_CONTIGUOUS']


def test_roi_puts_the_scale_point_straight_above_the_centre():
    centre = np.array([0.99, 0.55])
    for scale in (
        [0.99, 0.45],
        [0.012, 0.5],
        [0.97, 0.52],
    ):  # up, up-right across the seam, up-left
        roi = Roi.from_points(centre, scale)
        xy, front = roi.view(256).from_uv(np.array(scale))
        assert front and np.allclose(xy, [0.5, 0.5 - 0.5 / ROI_SCALE], atol=1e-6)
        assert np.isclose(roi.radius, angle_between(uv_to_ray(centre), uv_to_ray(scale)))


def test_ring_views_cover_the_horizon():
    views = ring_views(60, 256, 20)
    assert len(views) == 18
    centres = np.array([v.u for v in views])
    for u in np.linspace(0, 1, 97):
        gap = np.abs((centres - u + 0.5) % 1 - 0.5) * 360
        assert gap.min() <= 10 + 1e-9
