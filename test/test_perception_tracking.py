"""Stable ids, input validation, the external backend and facilitator identification.

No models needed.
"""

import numpy as np
import pytest

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import NUM_JOINTS
from social_pose_diffusion.perception import PerceptionError, identify_facilitator, make_extractor
from social_pose_diffusion.perception.validate import check_panorama, clean_keypoints

SECOND = 1_000_000_000
# A seated person's upper body around (0, 0), in (du, dv): head, shoulders, elbows, wrists, hips.
BODY = np.array(
    [
        [0, -0.06],
        [-0.005, -0.065],
        [0.005, -0.065],
        [-0.01, -0.06],
        [0.01, -0.06],
        [-0.025, -0.02],
        [0.025, -0.02],
        [-0.03, 0.03],
        [0.03, 0.03],
        [-0.02, 0.06],
        [0.02, 0.06],
        [-0.015, 0.08],
        [0.015, 0.08],
    ]
)


def person(u, v=0.5, conf=0.9):
    kp = np.empty((NUM_JOINTS, 3), np.float32)
    kp[:, :2] = BODY + (u, v)
    kp[:, 0] %= 1.0
    kp[:, 2] = conf
    return kp


def frame(stamp_ns, us, ids=None):
    kps = np.stack([person(u) for u in us]) if us else np.zeros((0, NUM_JOINTS, 3), np.float32)
    return GroupFrame(
        stamp_ns, np.asarray(ids if ids is not None else range(len(us)), np.int32), kps
    )


def id_at(out, u):
    """Id of the person whose nose is nearest to azimuth u."""
    gaps = np.abs((out.keypoints[:, 0, 0] - u + 0.5) % 1 - 0.5)
    return int(out.ids[gaps.argmin()])


def test_ids_stay_with_people_and_ignore_input_ids():
    ext = make_extractor('external')
    first = ext.process_keypoints(frame(0, [0.2, 0.5, 0.999], ids=[7, 7, 7]))
    assert sorted(first.ids) == [1, 2, 3]
    ids = {u: id_at(first, u) for u in (0.2, 0.5, 0.999)}
    # Small motion, shuffled order, the seam crossed (0.999 -> 0.003), new input ids.
    second = ext.process_keypoints(frame(SECOND // 30, [0.003, 0.21, 0.49], ids=[0, 0, 1]))
    assert (
        id_at(second, 0.003) == ids[0.999]
        and id_at(second, 0.21) == ids[0.2]
        and id_at(second, 0.49) == ids[0.5]
    )
    third = ext.process_keypoints(frame(2 * SECOND // 30, [0.003, 0.21, 0.49, 0.75]))
    assert id_at(third, 0.75) == 4 and ext.stats['people'] == 4


def test_ids_survive_gaps_and_come_back_at_the_same_seat():
    ext = make_extractor('external', track_timeout_s=1.0)
    a = id_at(ext.process_keypoints(frame(0, [0.3, 0.6])), 0.3)
    ext.process_keypoints(frame(SECOND // 2, [0.6]))  # 0.3 unseen for 0.5 s
    assert id_at(ext.process_keypoints(frame(SECOND, [0.3, 0.6])), 0.3) == a
    ext.process_keypoints(frame(2 * SECOND + 1, [0.6]))
    assert (
        a not in ext.tracks.tracks and a in ext.tracks.seats
    )  # unseen for > 1 s: retired, seat kept
    back = ext.process_keypoints(frame(3 * SECOND + 1, [0.3, 0.6]))
    assert id_at(back, 0.3) == a  # found again where they sat: same id
    ext.process_keypoints(frame(4 * SECOND, [0.6]))
    ext.process_keypoints(frame(5 * SECOND + 1, [0.6]))  # 0.3 retired again
    moved = ext.process_keypoints(
        frame(6 * SECOND, [0.38, 0.6])
    )  # someone else, a seat further on
    assert id_at(moved, 0.38) not in (a, id_at(moved, 0.6)) and id_at(moved, 0.38) > 2


def test_seats_are_forgotten_after_the_seat_memory():
    ext = make_extractor('external', track_timeout_s=1.0, seat_memory_s=2.0)
    a = id_at(ext.process_keypoints(frame(0, [0.3, 0.6])), 0.3)
    for k in range(1, 6):
        ext.process_keypoints(frame(k * SECOND, [0.6]))
    assert id_at(ext.process_keypoints(frame(6 * SECOND, [0.3, 0.6])), 0.3) not in (a, 2)


def test_dropped_tracks_are_forgotten():
    ext = make_extractor('external')
    out = ext.process_keypoints(frame(0, [0.3, 0.6]))
    ext.tracks.drop([id_at(out, 0.3)])
    assert id_at(ext.process_keypoints(frame(1, [0.3, 0.6])), 0.3) == 3


def test_time_going_backwards_resets_the_tracks():
    ext = make_extractor('external')
    ext.process_keypoints(frame(5 * SECOND, [0.1, 0.4, 0.7]))
    again = ext.process_keypoints(frame(0, [0.7]))  # looping bag
    assert list(again.ids) == [1]
    ext.reset()
    assert list(ext.process_keypoints(frame(SECOND, [0.4])).ids) == [1]


def test_bad_keypoints_are_dropped_not_fatal():
    kps = np.stack([person(0.2), person(0.5), person(0.8)])
    kps[0, 3, 0] = np.nan
    kps[0, 4, 1] = 1.5
    kps[0, 5, 0] = 1.25  # wraps to 0.25
    kps[0, 6, 2] = np.inf
    kps[1, :, 2] = np.nan  # nothing usable: dropped
    kps[2, :, 2] = 7.0  # clipped to 1
    clean = clean_keypoints(GroupFrame(3, np.array([4, 5, 6]), kps))
    assert list(clean.ids) == [4, 6] and np.isfinite(clean.keypoints).all()
    assert (clean.keypoints[0, [3, 4, 6], 2] == 0).all() and np.isclose(
        clean.keypoints[0, 5, 0], 0.25
    )
    assert (clean.keypoints[1, :, 2] == 1).all()
    out = make_extractor('external').process_keypoints(GroupFrame(3, np.array([4, 5, 6]), kps))
    assert len(out) == 2
    with pytest.raises(PerceptionError, match='keypoints'):
        clean_keypoints(GroupFrame(0, np.zeros(2, np.int32), np.zeros((2, 5, 3))))
    assert len(make_extractor('external').process_keypoints(GroupFrame(0))) == 0


@pytest.mark.parametrize(
    'image, message',
    [
        (np.zeros((480, 480, 3), np.uint8), 'not equirectangular'),
        (np.zeros((480, 960), np.uint8), 'grayscale'),
        (np.zeros((480, 960, 4), np.uint8), 'H x W x 3'),
        (np.zeros((20, 40, 3), np.uint8), 'too small'),
        (np.zeros((0, 0, 3), np.uint8), 'too small'),
        (np.zeros((480, 960, 3), np.float32), 'uint8'),
        (None, 'numpy'),
    ],
)
def test_unusable_images_raise_a_clear_error(image, message):
    with pytest.raises(PerceptionError, match=message):
        check_panorama(image)
    assert issubclass(PerceptionError, ValueError)


def test_facilitator_by_seat_across_the_seam_and_by_id():
    group = make_extractor('external').process_keypoints(frame(0, [0.01, 0.3, 0.6]))
    rest, fac = identify_facilitator(group, seat_u=0.98)
    assert fac is not None and abs((fac[0, 0] - 0.01 + 0.5) % 1 - 0.5) < 1e-6
    assert len(rest) == 2 and id_at(group, 0.01) not in rest.ids
    rest, fac = identify_facilitator(group, seat_u=0.45)  # nobody within 18 deg
    assert fac is None and len(rest) == 3
    target = id_at(group, 0.6)
    rest, fac = identify_facilitator(group, facilitator_id=target)
    assert np.array_equal(fac, group.person(target)) and target not in rest.ids
    assert identify_facilitator(group, facilitator_id=99)[1] is None
    for kwargs in ({}, {'seat_u': 0.5, 'facilitator_id': 1}):
        with pytest.raises(PerceptionError, match='exactly one'):
            identify_facilitator(group, **kwargs)


def test_factory_rejects_unknown_backends_and_options():
    with pytest.raises(PerceptionError, match='unknown perception backend'):
        make_extractor('openpose')
    with pytest.raises(PerceptionError, match='bad option'):
        make_extractor('external', discovery_period=3)
    with pytest.raises(PerceptionError, match='max_people=0 is outside'):
        make_extractor('external', max_people=0)
    with pytest.raises(PerceptionError, match='track_timeout_s'):
        make_extractor('external', track_timeout_s=-1)
    with pytest.raises(PerceptionError, match='process_keypoints'):
        make_extractor('external').process(np.zeros((64, 128, 3), np.uint8), 0)
