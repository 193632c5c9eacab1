"""Meeting-like 360 scenes from real photos.

Many people of mixed sizes, occluded, turned, across the seam.

A real 360 camera in a discussion group sees people 35-140 px tall (in a
1280 x 640 frame), some in profile, some behind a laptop, a neighbour or a
face mask, some straddling the left/right seam, before a cluttered room.
:func:`meeting_scene` builds such a frame from the photos in ``test/data``
(each person a real photo, changed by a :data:`VARIANTS` entry) with known
ground truth; :class:`MeetingSequence` moves the same people slightly over
time (sway, a face covered for a while, someone leaving and coming back) for
tracking measurements. Ground truth is MediaPipe on the clean photo, moved
with the photo's crop: hidden joints keep their true place.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from social_pose_diffusion.core.skeleton import JOINT
from social_pose_diffusion.perception.composite import blank_panorama, photo_to_uv, place_photo

VARIANTS = ('plain', 'laptop', 'mask', 'hand', 'turned', 'cut_left', 'cut_right')
MIN_HEIGHT, MAX_HEIGHT = (
    35 / 640,
    140 / 640,
)  # person (photo) height as a share of the panorama height
TURNED_WIDTH = 0.6  # a torso turned ~50 deg away looks this much narrower
CUT = 0.3  # share of the photo's width a neighbour hides
SIZE_BANDS_PX = (70, 90, 120)  # at 640 px panorama height: < 70, 70-90, 90-120, >= 120


@dataclass(frozen=True)
class Person:
    """One placed person: which photo, how changed, where, how tall.

    ``truth`` is (J, 3) equirect u, v, visibility.
    """

    photo: int
    variant: str
    u: float
    height: float  # share of the panorama height
    top: float  # v of the photo's top edge
    truth: np.ndarray = field(repr=False)

    @property
    def height_px(self) -> float:
        """Height in pixels of a 640 px tall panorama (the issue's size bands)."""
        return 640 * self.height

    def band(self) -> int:
        """Size band index (0: < 70 px ... 3: >= 120 px at 640 px panorama height)."""
        return int(np.searchsorted(SIZE_BANDS_PX, self.height_px, side='right'))


def vary(photo, truth, variant):
    """``(image, truth (J, 3))`` of a person photo changed by ``variant``.

    truth x, y stay normalised to the image.

    laptop: a silver lid hides the lower third (hips, wrists); mask / hand:
    the lower face covered (face mask, hand over the mouth); turned: the
    photo squeezed to look turned away; cut_left / cut_right: a neighbour
    hides that side.
    """
    image, truth = photo.copy(), np.array(truth, np.float64)
    h, w = image.shape[:2]
    if variant == 'laptop':
        top = int(0.68 * h)
        lid = np.array([[0.18 * w, top], [0.82 * w, top], [0.88 * w, h], [0.12 * w, h]], np.int32)
        cv2.fillConvexPoly(image, lid, (196, 198, 202), cv2.LINE_AA)
        cv2.circle(
            image, (w // 2, (top + h) // 2), max(2, w // 30), (235, 235, 235), -1, cv2.LINE_AA
        )
    elif variant in ('mask', 'hand'):
        ears = truth[[JOINT['left_ear'], JOINT['right_ear']], :2] * (w, h)
        nose = truth[JOINT['nose'], :2] * (w, h)
        half = max(3.0, 0.5 * abs(ears[0, 0] - ears[1, 0]))
        centre = (int(nose[0]), int(nose[1] + 0.7 * half))
        colour = (235, 225, 215) if variant == 'mask' else (120, 150, 205)
        cv2.ellipse(
            image, centre, (int(0.95 * half), int(0.75 * half)), 0, 0, 360, colour, -1, cv2.LINE_AA
        )
    elif variant == 'turned':
        image = cv2.resize(image, (max(8, int(TURNED_WIDTH * w)), h), interpolation=cv2.INTER_AREA)
    elif variant in ('cut_left', 'cut_right'):
        cut = int(CUT * w)
        left = cut if variant == 'cut_left' else 0
        image, truth = _crop(image, truth, left, w - cut + left)
    elif variant != 'plain':
        raise ValueError(f'unknown variant {variant!r} (choose from {", ".join(VARIANTS)})')
    return image, truth


def _crop(image, truth, x0, x1):
    """Columns x0:x1 of a photo and its truth moved along.

    Joints cut off get visibility 0 (hidden).
    """
    w = image.shape[1]
    truth = truth.copy()
    truth[:, 0] = (truth[:, 0] * w - x0) / (x1 - x0)
    truth[(truth[:, 0] < 0) | (truth[:, 0] > 1), 2] = 0.0
    return image[:, x0:x1], truth


def cluttered_room(height, clutter, seed=0):
    """A panorama background: uneven walls, a table band with boxes on it.

    The table also holds ``clutter`` photos (no people).
    """
    rng = np.random.default_rng(seed)
    pano = blank_panorama(height)
    w = 2 * height
    ramp = (
        np.linspace(0.75, 1.2, w)[None, :, None]
        * (1 + 0.1 * np.sin(np.linspace(0, 6, height)))[:, None, None]
    )
    pano[:] = np.clip(pano * ramp + rng.normal(0, 3, (1, w, 3)), 0, 255).astype(np.uint8)
    pano[int(0.72 * height) :] = (60, 80, 100)  # the table top
    for _ in range(8):
        x = int(rng.uniform(0, w - 0.1 * w))
        y = int(rng.uniform(0.2, 0.4) * height)
        colour = tuple(int(c) for c in rng.integers(40, 220, 3))
        cv2.rectangle(
            pano,
            (x, y),
            (x + int(rng.uniform(0.02, 0.06) * w), y + int(0.08 * height)),
            colour,
            -1,
        )
    for _ in range(4 if clutter is not None else 0):
        place_photo(pano, clutter, rng.uniform(), rng.uniform(0.76, 0.85), rng.uniform(12, 20))
    return pano


def _place(pano, photos, photo, variant, u, height, top, max_width_deg):
    """Paste one varied photo so it is ``height`` of the panorama tall.

    Its top is a little above the horizon.
    """
    image, truth = vary(*photos[photo], variant)
    h, w = image.shape[:2]
    height_deg = 180.0 * height
    width_deg = height_deg * w / h
    if width_deg > max_width_deg:  # a neighbour sits closer than the photo is wide: crop its sides
        keep = max_width_deg / width_deg
        cut = int(0.5 * (1 - keep) * w)
        image, truth = _crop(image, truth, cut, w - cut)
        width_deg = height_deg * image.shape[1] / h
    view = place_photo(pano, image, u, top + 0.5 * height, width_deg)
    uv = photo_to_uv(view, image.shape, truth[:, :2])
    return Person(
        photo,
        variant,
        float(u) % 1.0,
        float(height),
        float(top),
        np.concatenate([uv, truth[:, 2:]], axis=1),
    )


def meeting_scene(
    photos, count=13, height=640, seed=0, clutter=None, variants=VARIANTS, seam=True
):
    """A meeting of ``count`` people (photos cycled) around the camera: ``(panorama, [Person])``.

    ``photos`` are ``[(bgr, truth (J, 3))]`` (truth: MediaPipe on the photo,
    normalised x, y, visibility). Heights are spread evenly (log) over
    35-140 px at 640 px (scaled with ``height``) and shuffled; variants are
    cycled from a random start; with ``seam`` one person straddles u = 0.
    ``clutter`` (a BGR photo without people) dresses the table.
    """
    rng = np.random.default_rng(seed)
    pano = cluttered_room(height, clutter, seed)
    heights = rng.permutation(np.geomspace(MIN_HEIGHT, MAX_HEIGHT, count))
    spacing = 1.0 / count
    start = rng.uniform(-0.3, 0.3) * spacing if seam else rng.uniform()
    offset = int(rng.integers(len(variants)))
    people = []
    for k in range(count):
        u = start + k * spacing + rng.uniform(-0.08, 0.08) * spacing
        people.append(
            _place(
                pano,
                photos,
                k % len(photos),
                variants[(k + offset) % len(variants)],
                u,
                heights[k],
                0.5 - heights[k] * rng.uniform(0.15, 0.3),
                0.95 * 360 * spacing,
            )
        )
    return pano, people


class MeetingSequence:
    """Consecutive frames of one meeting.

    Everyone sways, one covers their face for a while, one leaves and returns.

    Every person is rendered once into a patch; frame ``t`` pastes the
    patches shifted by whole pixels (a few pixels of sway, each at its own
    pace) onto the room with fresh sensor noise, so 300 frames cost little.
    :meth:`frame` returns ``(panorama, [truth (J, 3) or None when absent])``.
    """

    def __init__(
        self,
        photos,
        count=13,
        height=640,
        seed=0,
        clutter=None,
        fps=30.0,
        away=(4.0, 5.0),
        covered=(2.0, 3.5),
    ):
        self.fps, self.height = float(fps), int(height)
        self.background = cluttered_room(height, clutter, seed)
        _, self.people = meeting_scene(photos, count, height, seed, clutter)
        rng = np.random.default_rng(seed + 1)
        self._patches = [self._patch(photos, p) for p in self.people]
        self._covered = [self._patch(photos, p, 'mask') for p in self.people]
        self.sway_px = rng.uniform(1.0, 3.0, count) * height / 640
        self.rate_hz = rng.uniform(0.15, 0.5, count)
        self.phase = rng.uniform(0, 2 * np.pi, count)
        self.away, self.covered = away, covered
        self.away_person, self.covered_person = int(rng.integers(count)), int(rng.integers(count))
        self._noise = np.random.default_rng(seed + 2)

    def _patch(self, photos, person, variant=None):
        """``(x0, y0, pixels, mask)`` of one person alone on an empty canvas.

        x0 may be negative: the seam.
        """
        canvas = np.zeros_like(self.background)
        _place(
            canvas,
            photos,
            person.photo,
            variant or person.variant,
            person.u,
            person.height,
            person.top,
            0.95 * 360.0 / len(self.people),
        )
        w = canvas.shape[1]
        shift = w // 2 - int(person.u * w)  # centre the person so the patch never wraps
        rolled = np.roll(canvas, shift, axis=1)
        mask = rolled.any(axis=2)
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        return x0 - shift, y0, rolled[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy()

    def __len__(self):
        return len(self.people)

    def _dx(self, k, t):
        return int(
            round(
                self.sway_px[k]
                * np.sin(2 * np.pi * self.rate_hz[k] * t / self.fps + self.phase[k])
            )
        )

    def frame(self, t):
        """Panorama at frame ``t`` and each person's truth (None while away)."""
        pano = self.background.copy()
        w = pano.shape[1]
        seconds = t / self.fps
        truths = []
        for k, person in enumerate(self.people):
            if k == self.away_person and self.away[0] <= seconds < self.away[1]:
                truths.append(None)
                continue
            covered = k == self.covered_person and self.covered[0] <= seconds < self.covered[1]
            x0, y0, pixels, mask = (self._covered if covered else self._patches)[k]
            dx = self._dx(k, t)
            cols = (x0 + dx + np.arange(pixels.shape[1])) % w
            region = pano[y0 : y0 + pixels.shape[0], cols]
            region[mask] = pixels[mask]
            pano[y0 : y0 + pixels.shape[0], cols] = region
            truth = person.truth.copy()
            truth[:, 0] = (truth[:, 0] + dx / w) % 1.0
            truths.append(truth)
        noise = self._noise.integers(-4, 5, pano.shape[:2] + (1,), dtype=np.int16)
        return np.clip(pano + noise, 0, 255).astype(np.uint8), truths
