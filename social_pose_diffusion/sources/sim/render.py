"""Rendering a session as equirectangular camera frames.

A cluttered, lit room (walls, windows, shelves, lamps, texture and sensor
noise) with a table around the camera; people are drawn as articulated bodies
(torso, arms, head, hair), the table hiding their hips. Raw pixels are so
harder to read than keypoints, as with a real camera.
"""

import cv2
import numpy as np

from social_pose_diffusion.core.skeleton import JOINT, wrap_u
from social_pose_diffusion.observation.raster import seam_copies

SKIN = ((140, 170, 215), (95, 135, 190), (60, 90, 140), (165, 195, 230), (80, 110, 160))
TABLE_V = 0.64


def _background(rng, width, height):
    """A static room seen from the table.

    Walls, windows, furniture, lamps, texture, the table top.
    """
    img = np.zeros((height, width, 3), np.float32)
    wall = rng.uniform(90, 170, 3)
    img[:] = wall * np.linspace(0.8, 1.1, height)[:, None, None]
    img[int(0.72 * height) :] = rng.uniform(40, 90, 3)  # floor beyond the table
    for _ in range(rng.integers(10, 18)):  # shelves, cupboards, posters, windows
        w, h = rng.integers(width // 40, width // 8), rng.integers(height // 12, height // 3)
        x, y = rng.integers(0, width - w), rng.integers(int(0.15 * height), int(0.6 * height))
        img[y : y + h, x : x + w] = rng.uniform(20, 250, 3)
        if rng.random() < 0.5:  # stripes of books or blinds
            img[y : y + h, x : x + w : max(2, w // 12)] *= 0.6
    texture = cv2.resize(
        rng.normal(0, 18, (height // 16, width // 16)).astype(np.float32), (width, height)
    )
    img += texture[..., None] + rng.normal(0, 6, img.shape).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = np.full((height, width), 0.55, np.float32)
    for _ in range(3):  # lamps and windows lighting the room unevenly
        cx, cy = rng.uniform(0, width), rng.uniform(0.1, 0.5) * height
        dx = np.minimum(np.abs(xx - cx), width - np.abs(xx - cx))
        light += 0.6 * np.exp(-(dx**2 + (yy - cy) ** 2) / (2 * (0.15 * width) ** 2))
    img *= light[..., None]
    table = int(TABLE_V * height)
    img[table:] = rng.uniform(60, 140, 3) * np.linspace(1.1, 0.7, height - table)[:, None, None]
    img[table : table + 3] = 40
    return np.clip(img, 0, 255).astype(np.uint8)


class Renderer:
    """Draws a session's frames; deterministic for a seed."""

    def __init__(self, session, width=960, height=480, seed=0):
        if width != 2 * height or height < 16:
            raise ValueError(f'equirectangular frames are 2:1, got {width}x{height}')
        rng = np.random.default_rng(seed + 7919)
        self.session, self.width, self.height = session, width, height
        self.background = _background(rng, width, height)
        people = 1 + session.participants.shape[1]
        self.colours = [
            dict(
                shirt=tuple(int(c) for c in rng.uniform(20, 235, 3)),
                skin=SKIN[rng.integers(len(SKIN))],
                hair=tuple(int(c) for c in rng.uniform(10, 90, 3)),
            )
            for _ in range(people)
        ]
        self.noise = [rng.normal(0, 3, (height, width, 3)).astype(np.int16) for _ in range(4)]

    def frame(self, t):
        """The BGR camera frame at index ``t``."""
        s = self.session
        img = self.background.copy()
        skeletons = [s.facilitator[t]] + [
            s.participants[t, p] for p in range(s.participants.shape[1])
        ]
        for layer in ('body', 'table', 'limbs'):
            if layer == 'table':
                table = int(TABLE_V * self.height)
                img[table:] = self.background[table:]
                continue
            for skeleton, colours in zip(skeletons, self.colours):
                if skeleton[:, 2].max() > 0:
                    self._draw(img, skeleton[:, :2], colours, layer)
        noisy = img.astype(np.int16) + self.noise[t % len(self.noise)]
        return np.clip(noisy, 0, 255).astype(np.uint8)

    def _draw(self, img, uv, colours, layer):
        ls, rs = JOINT['left_shoulder'], JOINT['right_shoulder']
        y = uv[:, 1] * self.height
        across = wrap_u(uv[rs, 0] - uv[ls, 0]) * self.width
        scale = max(2, int(0.18 * np.hypot(across, y[ls] - y[rs])))
        # people straddling the seam are drawn at both edges
        for x in seam_copies(uv[:, 0], self.width, uv[ls, 0], margin=scale * 4):
            p = {name: (int(round(x[j])), int(round(y[j]))) for name, j in JOINT.items()}
            if layer == 'body':
                torso = np.array(
                    [p['left_shoulder'], p['right_shoulder'], p['right_hip'], p['left_hip']]
                )
                cv2.fillConvexPoly(img, torso, colours['shirt'], cv2.LINE_AA)
                head = np.mean([p['nose'], p['left_eye'], p['right_eye']], 0)
                r = max(3, int(1.1 * np.hypot(*np.subtract(p['left_ear'], p['right_ear'])) / 2))
                neck_top = (int(head[0]), int(head[1] + r))
                mid = tuple(np.mean([p['left_shoulder'], p['right_shoulder']], 0).astype(int))
                cv2.line(img, mid, neck_top, colours['skin'], scale, cv2.LINE_AA)
                cv2.ellipse(
                    img,
                    (int(head[0]), int(head[1])),
                    (r, int(1.25 * r)),
                    0,
                    0,
                    360,
                    colours['skin'],
                    -1,
                    cv2.LINE_AA,
                )
                cv2.ellipse(
                    img,
                    (int(head[0]), int(head[1] - 0.4 * r)),
                    (r, int(0.9 * r)),
                    0,
                    180,
                    360,
                    colours['hair'],
                    -1,
                    cv2.LINE_AA,
                )
                for eye in ('left_eye', 'right_eye'):
                    cv2.circle(img, p[eye], max(1, r // 6), (30, 30, 30), -1, cv2.LINE_AA)
            else:
                for side in ('left', 'right'):
                    cv2.line(
                        img,
                        p[f'{side}_shoulder'],
                        p[f'{side}_elbow'],
                        colours['shirt'],
                        scale + 1,
                        cv2.LINE_AA,
                    )
                    cv2.line(
                        img,
                        p[f'{side}_elbow'],
                        p[f'{side}_wrist'],
                        colours['skin'],
                        scale,
                        cv2.LINE_AA,
                    )
                    cv2.circle(img, p[f'{side}_wrist'], scale, colours['skin'], -1, cv2.LINE_AA)
