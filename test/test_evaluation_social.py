"""The closed-loop social evaluation reads behaviour right.

The demonstration scores as itself, holding still scores nothing, and a facilitator that follows
the group follows a counterfactual group too.
"""

import numpy as np
import pytest

from social_pose_diffusion.core.skeleton import head_yaw
from social_pose_diffusion.evaluation import social
from social_pose_diffusion.sources.sim import simulate


@pytest.fixture(scope='module')
def sessions():
    return [
        simulate(style, 4, 90.0, 30.0, seed)
        for style, seed in (('teacher', 5), ('music_teacher', 6))
    ]


@pytest.fixture(scope='module')
def calibration(sessions):
    return social.calibrate_rule(sessions)


def run(facilitator, session, group=None):
    frames, poses = social.rollout(facilitator, session, group)
    return social.judge(session, frames, poses)


def test_the_demonstration_scores_as_the_reference(sessions):
    for session in sessions:
        truth = run(social.TruthFacilitator(), session)
        assert truth['turn_gain'] == pytest.approx(1.0)
        assert truth['yaw_bearing_correlation'] > 0.85 and truth['attention_accuracy'] > 0.8
        assert truth['turn_within_1s'] == 1.0 and truth['turn_wrong_direction'] == 0.0
        assert truth['mpjpe'] == 0.0
        inv = truth['invitation']
        if inv['onsets']:
            assert inv['hits'] == 1.0 and inv['false_raises_per_min'] == 0.0
            assert inv['head_on_invitee'] > 0.5


def test_the_late_demonstration_turns_as_much_but_that_much_later(sessions):
    for session in sessions:
        truth = run(social.TruthFacilitator(), session)
        late = run(social.TruthFacilitator(0.2), session)
        assert late['turn_gain'] == pytest.approx(1.0, abs=0.05)
        assert late['turn_latency_median_s'] > truth['turn_latency_median_s'] + 0.1
        assert late['attention_accuracy'] < truth['attention_accuracy'] and late['mpjpe'] > 0


def test_holding_still_scores_nothing(sessions):
    for session in sessions:
        hold = run(social.HoldFacilitator(), session)
        assert hold['turn_gain'] == 0.0 and hold['yaw_bearing_correlation'] == 0.0
        assert hold['turn_within_3s'] == 0.0
        if hold['invitation']['onsets']:
            assert hold['invitation']['hits'] == 0.0


def test_the_rule_follows_the_group_and_its_counterfactuals(sessions, calibration):
    session = sessions[0]
    rule = run(social.RuleFacilitator(calibration), session)
    assert rule['yaw_bearing_correlation'] > 0.7 and rule['turn_gain'] > 0.5
    frames, _ = social.rollout(social.RuleFacilitator(calibration), session)
    mirrored = social.counterfactual_group(session, 'mirrored')
    flipped = social.head_metrics(
        session, frames, social.rollout(social.RuleFacilitator(calibration), session, mirrored)[1]
    )
    assert flipped['yaw_bearing_correlation'] < -0.5
    nobody = social.counterfactual_group(session, 'nobody')
    still = social.head_metrics(
        session, frames, social.rollout(social.RuleFacilitator(calibration), session, nobody)[1]
    )
    assert still['turn_within_3s'] == 0.0
    other = social.counterfactual_group(session, 'other', sessions[1])
    unrelated = social.head_metrics(
        session, frames, social.rollout(social.RuleFacilitator(calibration), session, other)[1]
    )
    assert abs(unrelated['yaw_bearing_correlation']) < 0.5


def test_mirrored_group_is_the_mirror_image_about_the_facilitator(sessions):
    session = sessions[0]
    seat = session.info['facilitator_seat_u']
    mirrored = social.counterfactual_group(session, 'mirrored')
    from social_pose_diffusion.core.skeleton import wrap_u

    original = wrap_u(session.participants[100, :, 0, 0] - seat)
    assert np.allclose(wrap_u(mirrored[100, :, 0, 0] - seat), -original, atol=1e-6)


def test_frechet_distance_is_zero_for_the_same_motion_and_grows_with_a_difference(sessions):
    fac = np.asarray(sessions[0].facilitator[:, :, :2], np.float64)
    truth = social.motion_features(fac)
    assert social.frechet_distance(truth, truth) == pytest.approx(0.0, abs=1e-6)
    still = social.motion_features(
        np.repeat(fac[:1], len(fac), 0) + 1e-5 * np.random.default_rng(0).normal(size=fac.shape)
    )
    assert social.frechet_distance(still, truth) > 10.0


def test_head_yaw_turns_with_the_nose():
    pose = simulate('teacher', 3, 1.0, 30.0, 1).facilitator[0, :, :2].astype(np.float64)
    turned = pose.copy()
    turned[:5, 0] += 0.01
    assert head_yaw(turned) - head_yaw(pose) == pytest.approx(0.01)
