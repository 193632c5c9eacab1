"""Pictures people would rather see than read: GIFs and contact sheets of frames with skeletons."""

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from social_pose_diffusion.observation.raster import draw_skeleton

GROUP_COLOUR, TRUE_COLOUR, GENERATED_COLOUR = (60, 200, 60), (40, 40, 230), (230, 120, 20)


def overlay(
    bgr: np.ndarray,
    group: Iterable[ArrayLike] = (),
    true: ArrayLike | None = None,
    generated: ArrayLike | None = None,
) -> np.ndarray:
    """A copy of ``bgr`` with skeletons drawn.

    Group skeletons (green), the true (red) and generated (blue) facilitator.
    """
    img = bgr.copy()
    for person in group:
        draw_skeleton(img, person, GROUP_COLOUR)
    for person, colour in ((true, TRUE_COLOUR), (generated, GENERATED_COLOUR)):
        if person is not None:
            draw_skeleton(img, person, colour, thickness=3, radius=4)
    return img


def contact_sheet(frames: Sequence[np.ndarray], columns: int = 2, width: int = 960) -> np.ndarray:
    """Frames tiled into one image, each resized to ``width / columns``."""
    tile_w = width // columns
    tiles = [cv2.resize(f, (tile_w, tile_w * f.shape[0] // f.shape[1])) for f in frames]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def save_gif(
    frames: Sequence[np.ndarray], path: str | Path, fps: float = 10.0, width: int = 480
) -> None:
    """An animated GIF of BGR frames, written atomically."""
    path = Path(path)
    images = [
        Image.fromarray(
            cv2.cvtColor(
                cv2.resize(f, (width, width * f.shape[0] // f.shape[1])), cv2.COLOR_BGR2RGB
            )
        )
        for f in frames
    ]
    tmp = path.with_suffix('.tmp.gif')
    try:
        images[0].save(
            tmp, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
        )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def save_png(img: np.ndarray, path: str | Path) -> None:
    """A PNG written atomically."""
    path = Path(path)
    tmp = path.with_suffix('.tmp.png')
    try:
        if not cv2.imwrite(str(tmp), img):
            raise ValueError(f'could not write {path}')
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
