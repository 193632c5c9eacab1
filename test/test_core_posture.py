"""Posture limits: demonstrated postures pass unchanged, drifted ones are turned back."""

import numpy as np
import pytest

from social_pose_diffusion.core.posture import PostureLimits, link_offsets
from social_pose_diffusion.core.skeleton import NUM_JOINTS, bone_lengths, head_yaw
from social_pose_diffusion.planning.integrator import Integrator
from social_pose_diffusion.policy import PolicyConfig
from social_pose_diffusion.sources.sim import simulate


@pytest.fixture(scope='module')
def poses():
    return np.concatenate(
        [simulate(style, 3, 20.0, 30.0, seed=5).facilitator[:, :, :2] for style in ('teacher',)]
    ).astype(np.float64)


@pytest.fixture(scope='module')
def limits(poses):
    return PostureLimits.fit(poses)


def test_every_demonstrated_posture_is_kept(poses, limits):
    np.testing.assert_allclose(limits.apply(poses), poses, atol=1e-12)


def test_a_drifted_head_and_a_tilted_torso_come_back_with_their_bones(poses, limits):
    pose = poses[0].copy()
    pose[:5, 0] += 0.2  # the head floated a fifth of the panorama away from the body
    fixed = limits.apply(pose)
    assert abs(head_yaw(fixed)) <= np.abs(head_yaw(poses)).max() + 0.02
    np.testing.assert_allclose(bone_lengths(fixed), bone_lengths(pose), rtol=1e-2)
    # The whole body turned 90 degrees in the image plane (lying on its side).
    centre = pose.mean(0)
    turned = centre + (poses[0] - centre)[:, ::-1] * [1.0, -1.0]
    back = limits.apply(turned)
    shoulders = link_offsets(back)[4]  # bone 4: right shoulder from the left one
    assert abs(shoulders[1]) < 0.5 * abs(shoulders[0])  # the shoulder line is level again
    body = slice(4, None)  # the head's small bones change a little when the neck moves it
    np.testing.assert_allclose(bone_lengths(back)[body], bone_lengths(turned)[body], rtol=1e-6)


def test_an_integrator_with_limits_bounds_a_biased_policy(poses, limits):
    speed = np.full(NUM_JOINTS, 0.004)
    push = np.zeros((600, NUM_JOINTS, 2))
    push[:, :5, 0] = 0.001  # the head keeps turning the same way
    push[:, 5, 1], push[:, 6, 1] = 0.001, -0.001  # and the shoulders keep tilting
    leak = 0.01  # the agent's home pull keeps the body's centre; the limits keep its shape
    free = Integrator.for_pose(poses[0], speed, leak).rollout(poses[0], push)
    held = Integrator.for_pose(poses[0], speed, leak, limits).rollout(poses[0], push)
    assert abs(head_yaw(free[-1])) > 0.3
    assert abs(head_yaw(held[-1])) <= np.abs(head_yaw(poses)).max() + 0.02
    tilt = link_offsets(np.stack([free[-1], held[-1], poses[0]]))[:, 4]  # the shoulder line
    assert abs(tilt[0, 1]) > 2 * abs(tilt[0, 0])  # free: the shoulders stand on end
    assert abs(tilt[1, 1] - tilt[2, 1]) < 0.5 * abs(tilt[2, 0])  # held: near level
    np.testing.assert_allclose(
        bone_lengths(held), np.broadcast_to(bone_lengths(poses[0]), (600, 11)), rtol=1e-6
    )


def test_limits_round_trip_through_the_model_config(poses, limits):
    rows = limits.to_list()
    again = PostureLimits.from_list(PolicyConfig(posture_limits=rows).posture_limits)
    np.testing.assert_allclose(again.apply(poses[:50]), limits.apply(poses[:50]))
    with pytest.raises(ValueError, match='posture_limits must have'):
        PolicyConfig(posture_limits=rows[:-2] + rows[-1:])
    upside = [list(r) for r in rows]
    upside[0][1], upside[0][2] = 1.0, -1.0
    with pytest.raises(ValueError, match='low <= high'):
        PolicyConfig(posture_limits=upside)
    with pytest.raises(ValueError, match='finite'):
        PolicyConfig(posture_limits=[[float('nan'), 0, 0]] + rows[1:])


def test_a_start_pose_outside_the_limits_is_brought_in_at_the_speed_limit(poses, limits):
    start = poses[0].copy()
    start[:5, 0] += 0.05  # an observed start pose with the head turned past the limits
    speed = np.full(NUM_JOINTS, 0.004)
    path = Integrator.for_pose(start, speed, limits=limits).rollout(
        start, np.zeros((60, NUM_JOINTS, 2))
    )
    steps = np.linalg.norm(np.diff(np.concatenate([start[None], path]), axis=0), axis=-1)
    assert steps.max() <= 0.004 * 1.05
    assert abs(head_yaw(path[-1])) <= np.abs(head_yaw(poses)).max() + 0.02


def test_limits_fit_only_what_was_seen(poses, limits):
    seen = np.ones(poses.shape[:2], bool)
    seen[:, 3:5] = False  # a detector without ears
    seen[::2, 9] = False  # the left wrist seen every other frame
    partial = PostureLimits.fit(poses, seen)
    assert np.all(partial.low[2:4] == -np.pi) and np.all(partial.high[2:4] == np.pi)
    np.testing.assert_allclose(partial.centre[4:], limits.centre[4:], atol=0.05)
    np.testing.assert_allclose(partial.apply(poses), poses, atol=1e-12)
