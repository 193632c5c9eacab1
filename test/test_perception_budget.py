"""The per-frame time budget's scheduling with an injected clock.

Also forward prediction and option checks (no models).
"""

import numpy as np
import pytest
from test_perception_tracking import person  # one seated body for the tracking tests

from social_pose_diffusion.core.skeleton import BONES
from social_pose_diffusion.perception import PerceptionError, make_extractor
from social_pose_diffusion.perception.equirect import angle_between, uv_to_ray
from social_pose_diffusion.perception.roi import ROI_SCALE, Roi
from social_pose_diffusion.perception.schedule import FrameBudget
from social_pose_diffusion.perception.tracks import MAX_PREDICT_S, Track, rotate
from social_pose_diffusion.perception.verify import plausible

MS = 1_000_000
FRAME = 33 * MS


class FakeClock:
    """Seconds that only move when the test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def bones(keypoints):
    """Angular length of every bone on the sphere (radians)."""
    kp = np.asarray(keypoints, np.float64)
    return angle_between(
        uv_to_ray(kp[[a for a, _ in BONES], :2]), uv_to_ray(kp[[b for _, b in BONES], :2])
    )


def schedule(budget, people, frames, cost_s, urgent_of=lambda t: ()):
    """Run ``frames`` frames in which each round of ``budget.workers`` updates costs ``cost_s``.

    Returns each person's update stamps.
    """
    clock = budget.clock
    last = {i: 0 for i in range(people)}
    stamps = {i: [] for i in range(people)}
    for t in range(1, frames + 1):
        stamp = t * FRAME
        budget.start()
        picked = budget.pick({i: stamp - last[i] for i in last}, FRAME, set(urgent_of(t)))
        rounds = budget.rounds(len(picked))
        clock.now += cost_s * rounds
        budget.round_cost.add(cost_s * rounds, rounds)
        for i in picked:
            last[i] = stamp
            stamps[i].append(stamp)
    return stamps


def test_budget_bounds_the_updates_and_nobody_waits_longer_than_the_staleness_limit():
    budget = FrameBudget(50.0, 200.0, FakeClock())
    stamps = schedule(budget, 13, 90, cost_s=0.012)  # 12 ms per update: four fit in 50 ms
    counts = [len(s) for s in stamps.values()]
    assert 90 * 3 <= sum(counts) <= 90 * 4  # within 200 ms at 33 ms needs 3 a frame
    gaps = [np.diff([0] + s).max() for s in stamps.values()]
    assert max(gaps) <= 200 * MS  # every person within the staleness limit
    assert min(counts) >= 0.7 * max(counts)  # round-robin: nobody starves, nobody hogs


def test_when_updates_are_too_slow_the_frame_budget_wins_over_staleness():
    budget = FrameBudget(50.0, 200.0, FakeClock())
    stamps = schedule(budget, 13, 90, cost_s=0.040)  # one update per frame fits
    counts = [len(s) for s in stamps.values()]
    assert sum(counts) <= 90 * 2 and min(counts) >= 5  # frame cost held; still everyone in turn
    assert max(np.diff([0] + s).max() for s in stamps.values()) > 200 * MS


def test_cheap_updates_fill_the_budget_and_no_budget_updates_everyone():
    budget = FrameBudget(50.0, 200.0, FakeClock())
    schedule(budget, 13, 30, cost_s=0.004)  # the running cost learns 4 ms per update
    stamps = schedule(budget, 13, 10, cost_s=0.004)  # then 12 fit in 50 ms
    assert sum(len(s) for s in stamps.values()) >= 10 * 12
    everyone = schedule(FrameBudget(0.0, 200.0, FakeClock()), 13, 5, cost_s=0.1)
    assert all(len(s) == 5 for s in everyone.values())


def test_two_workers_update_two_people_a_round():
    one = schedule(FrameBudget(50.0, 200.0, FakeClock()), 13, 60, cost_s=0.030)
    two = schedule(FrameBudget(50.0, 200.0, FakeClock(), workers=2), 13, 60, cost_s=0.030)
    assert sum(len(s) for s in one.values()) <= 60 * 1.2  # 30 ms a round: one round fits
    assert sum(len(s) for s in two.values()) >= 60 * 2  # the same round updates two
    assert FrameBudget(50.0, 200.0, FakeClock(), workers=2).rounds(3) == 2


def test_urgent_people_and_motion_go_first_and_the_detector_gets_what_is_left():
    clock = FakeClock()
    budget = FrameBudget(50.0, 200.0, clock)
    budget.round_cost.value = budget.view_cost.value = 0.020
    budget.start()
    ages = {1: 100 * MS, 2: 60 * MS, 3: 30 * MS, 4: 30 * MS}
    assert budget.pick(ages, FRAME, urgent={4}) == [4, 1]
    assert budget.pick(ages, FRAME, motion={2: 2.0}) == [2, 1]  # 60 ms at 3x weight beats 100 ms
    assert budget.pick(ages, FRAME, reserve_s=0.020) == [1]  # room kept for one detector view
    clock.now = 0.030
    assert budget.views(5) == 1 and budget.remaining() == pytest.approx(0.020)
    clock.now = 0.060
    assert budget.views(5) == 0 and budget.pick(ages, FRAME) == [
        1
    ]  # over budget: the steady share only
    assert budget.pick({1: 190 * MS}, FRAME) == [1]  # due: would be too stale next frame


def test_running_costs_follow_the_measurements():
    budget = FrameBudget(50.0, 200.0, FakeClock())
    for _ in range(40):
        budget.round_cost.add(0.090, 3)
    assert budget.round_cost.value == pytest.approx(0.030, rel=1e-3)
    budget.round_cost.add(1.0, 0)  # nothing ran: no change
    assert budget.round_cost.value == pytest.approx(0.030, rel=1e-3)


def test_prediction_moves_people_rigidly_by_their_velocity_across_the_seam():
    track = Track(1, person(0.98), 0)
    track.measured(person(0.99), 100 * MS)  # 3.6 deg in 0.1 s
    track.measured(person(0.0), 200 * MS)
    ahead = track.predict(250 * MS)
    du = (ahead[0, 0] - track.keypoints[0, 0] + 0.5) % 1 - 0.5
    assert 0.002 < du < 0.006  # moving on towards u = 0.005
    assert np.allclose(bones(ahead), bones(track.keypoints), atol=1e-6)
    far = track.predict(10_000 * MS)  # never more than MAX_PREDICT_S ahead
    assert np.allclose(far, track.predict(int(MAX_PREDICT_S * 1e9) + 200 * MS), atol=1e-6)
    assert np.allclose(track.predict(200 * MS), track.keypoints, atol=1e-6)
    assert np.allclose(rotate(person(0.3), np.zeros(3)), person(0.3))


@pytest.mark.parametrize(
    'option, value',
    [
        ('budget_ms', -1),
        ('max_staleness_ms', 0),
        ('hold_s', -0.1),
        ('track_confidence', 1.5),
        ('zoom_fov_deg', 200),
        ('confirm_frames', -1),
        ('seat_memory_s', -5),
    ],
)
def test_budget_and_verification_options_are_checked(option, value):
    with pytest.raises(PerceptionError, match=f'{option}={value}'):
        make_extractor('mediapipe', **{option: value})


def test_small_far_people_are_plausible_but_not_specks():
    def roi(radius_deg):
        return Roi(0.3, 0.5, 0.0, ROI_SCALE * float(np.tan(np.radians(radius_deg))))

    body = person(0.3)
    assert plausible(body, roi(3.0))  # 35-45 px tall at 1280 x 640, behind a laptop
    assert not plausible(body, roi(2.0))
    assert not plausible(body[:, [0, 1, 2]] * (1, -1, 1) + (0, 1, 0), roi(10.0))  # upside down
