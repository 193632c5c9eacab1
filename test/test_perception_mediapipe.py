"""The MediaPipe backend on real photos pasted into equirectangular frames at known azimuths.

Ground truth is MediaPipe's own ``solutions.pose`` on the unwarped photo.
Tolerance: every joint MediaPipe sees in the photo (visibility >= 0.8) lies
within 15% of the photo's width (6 deg for a 40 deg photo) of it, and half
of them within 5%; joints outside the photo are guesses and not compared.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from social_pose_diffusion.perception import PerceptionError, make_extractor
from social_pose_diffusion.perception.composite import blank_panorama, photo_to_uv, place_photo
from social_pose_diffusion.perception.evaluation import joint_errors
from social_pose_diffusion.perception.reference import photo_keypoints

pytestmark = [pytest.mark.mediapipe]

DATA = Path(__file__).parent / 'data'
SEEN, MAX_ERROR, MEDIAN_ERROR = 0.8, 0.15, 0.05


@pytest.fixture(scope='module')
def photos():
    out = {}
    for name in ('astronaut', 'cameraman'):
        bgr = cv2.imread(str(DATA / f'person_{name}.jpg'))
        out[name] = (bgr, photo_keypoints(bgr))
        assert out[name][1] is not None, f'MediaPipe finds nobody in {name}'
    return out


@pytest.fixture(scope='module')
def extractor():
    return make_extractor('mediapipe')


def scene(photos, placements, height=960):
    """Panorama with ``[(name, u, fov_deg)]`` pasted in.

    Also each person's equirect ground truth (J, 3).
    """
    pano = blank_panorama(height)
    truths = []
    for name, u, fov in placements:
        bgr, ref = photos[name]
        view = place_photo(pano, bgr, u, 0.5, fov)
        truths.append(
            (np.concatenate([photo_to_uv(view, bgr.shape, ref[:, :2]), ref[:, 2:]], axis=1), fov)
        )
    return pano, truths


def assert_matches(frame, truths):
    assert len(frame) == len(truths), f'{len(frame)} people found, {len(truths)} placed'
    nearest = []
    for truth, fov in truths:
        errors = np.degrees(joint_errors(frame, truth)) / fov
        seen = truth[:, 2] >= SEEN
        assert errors[seen].max() < MAX_ERROR, f'errors / photo width: {errors.round(3)}'
        assert np.median(errors[seen]) < MEDIAN_ERROR
        gaps = np.abs((frame.keypoints[:, 0, 0] - truth[0, 0] + 0.5) % 1 - 0.5)
        nearest.append(int(frame.ids[gaps.argmin()]))
    assert len(set(nearest)) == len(truths), 'two placed people matched one detection'


CASES = {
    'forward': [('astronaut', 0.5, 40)],
    'straddling the seam': [('cameraman', 0.0, 40), ('astronaut', 0.5, 40)],
    'two side by side in one 40 deg view': [
        ('astronaut', 0.3 - 10 / 360, 20),
        ('cameraman', 0.3 + 10 / 360, 20),
    ],
    'neighbours at the seam': [
        ('cameraman', 0.995 - 10 / 360, 20),
        ('astronaut', 0.995 + 10 / 360, 20),
    ],
}


@pytest.mark.parametrize('case', CASES)
def test_everyone_found_where_mediapipe_puts_them_on_the_photo(photos, extractor, case):
    pano, truths = scene(photos, CASES[case])
    extractor.reset()
    assert_matches(extractor.process(pano, 0), truths)


def test_tracking_keeps_ids_and_accuracy_without_discovery(photos):
    pano, truths = scene(
        photos,
        [
            ('astronaut', 0.2, 35),
            ('cameraman', 0.45, 35),
            ('astronaut', 0.8, 35),
            ('cameraman', 0.95, 35),
        ],
    )
    extractor = make_extractor(
        'mediapipe', discovery_period=0, budget_ms=0
    )  # everyone updated every frame
    first = extractor.process(pano, 0)
    assert_matches(first, truths)
    for k in range(1, 4):
        frame = extractor.process(pano, k * 33_000_000)
        assert extractor.stats['views_scanned'] == 0 and extractor.stats['people'] == 4
        assert list(frame.ids) == list(first.ids)
        assert_matches(frame, truths)
    again = extractor.process(pano, 0)  # time jumped back: fresh tracks, full discovery
    assert extractor.stats['views_scanned'] == len(extractor.views) and list(again.ids) == [
        1,
        2,
        3,
        4,
    ]
    serial = make_extractor('mediapipe', discovery_period=0, workers=1, budget_ms=0)
    serial.process(pano, 0)
    assert np.array_equal(serial.process(pano, 1).keypoints, extractor.process(pano, 1).keypoints)


def test_a_moving_person_is_followed_with_the_same_id(photos):
    extractor = make_extractor('mediapipe', discovery_period=0)
    ids = set()
    for k, u in enumerate(np.linspace(0.9, 1.05, 12)):  # 54 deg in 3 deg steps, across the seam
        pano, truths = scene(photos, [('astronaut', u % 1.0, 40)], height=480)
        frame = extractor.process(pano, k * 33_000_000)
        assert_matches(frame, truths)
        ids.update(frame.ids.tolist())
    assert ids == {1}


def test_a_person_walking_in_is_found_by_the_rolling_rescan(photos):
    extractor = make_extractor(
        'mediapipe', discovery_period=6, budget_ms=0
    )  # the whole ring every 6 frames
    pano, _ = scene(photos, [('astronaut', 0.5, 40)])
    assert len(extractor.process(pano, 0)) == 1
    pano, truths = scene(photos, [('astronaut', 0.5, 40), ('cameraman', 0.1, 40)])
    counts = [len(extractor.process(pano, k * 33_000_000)) for k in range(1, 8)]
    assert counts[-1] == 2
    assert_matches(extractor.process(pano, 8 * 33_000_000), truths)


def test_no_people_gives_an_empty_frame(extractor):
    pano = blank_panorama(480)
    coffee = cv2.imread(str(DATA / 'no_person_coffee.jpg'))
    for u in (0.1, 0.5, 0.8):
        place_photo(pano, coffee, u, 0.5, 50)
    extractor.reset()
    frame = extractor.process(pano, 0)
    assert len(frame) == 0 and frame.keypoints.shape == (0, 13, 3) and frame.stamp_ns == 0


@pytest.mark.parametrize(
    'image',
    [
        np.zeros((480, 480, 3), np.uint8),
        np.zeros((480, 960), np.uint8),
        np.zeros((16, 32, 3), np.uint8),
        np.zeros((0, 0, 3), np.uint8),
    ],
)
def test_bad_images_raise_perception_error_and_leave_tracks_alone(photos, extractor, image):
    pano, _ = scene(photos, [('astronaut', 0.5, 40)], height=480)
    extractor.reset()
    before = extractor.process(pano, 0)
    with pytest.raises(PerceptionError):
        extractor.process(image, 1)
    assert list(extractor.process(pano, 2).ids) == list(before.ids)
