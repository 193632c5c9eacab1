"""The rest prior: damped velocity pulled toward the recording's rest posture, in chunks and as the
agent executes it."""

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.skeleton import JOINT, NUM_JOINTS, UPPER_BODY, apply_delta
from social_pose_diffusion.evaluation.offline import group_frame, start_agent
from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.observation.features import centroid, proprioception, with_style
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.policy.prior import (
    REST_S,
    last_delta,
    posture,
    prior_deltas,
    pull_per_frame,
    rest_deltas,
)
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 3, 20.0, 15.0, seed=6)


def test_without_pull_it_is_the_damped_velocity_and_with_it_the_posture_comes_home(session):
    poses = np.asarray(session.facilitator[40:43], np.float64)[..., :2]
    proprio = proprioception(poses)
    v = last_delta(proprio, 2)
    rest = dataset.rest_posture(session.facilitator[:, :, :2], session.seen())
    np.testing.assert_allclose(
        rest_deltas(v, posture(proprio), rest, 8, 0.6, 0.0), prior_deltas(v, 8, 0.6)
    )
    away = poses[-1].copy()
    away[JOINT['left_wrist'], 1] -= 0.05  # a raised hand, held still
    away[JOINT['nose'], 0] += 0.02  # and a turned head
    still = proprioception(np.stack([away] * 3))
    deltas = rest_deltas(last_delta(still, 2), posture(still), rest, 600, 0.6, 0.05)
    path = apply_delta(away, np.cumsum(deltas, 0))
    final = posture(proprioception(path[-1:][:, None]))[0]
    np.testing.assert_allclose(final, rest, atol=1e-6)  # the posture returns to rest...
    np.testing.assert_allclose(centroid(path[-1])[0], centroid(away)[0], atol=1e-9)  # in place
    assert abs(np.mean(rest[list(UPPER_BODY), 0])) < 1e-12


def test_the_newest_delta_is_read_before_the_style_code():
    poses = np.cumsum(np.full((3, NUM_JOINTS, 2), 0.001), 0) + 0.4
    proprio = with_style(proprioception(poses), ('musician', 'teacher'), 'teacher')
    np.testing.assert_allclose(last_delta(proprio, 2), 0.001, atol=1e-7)


def test_a_rest_model_stores_the_recordings_posture_and_adds_its_pull(session):
    config = make_config([session], d_model=16, layers=1, heads=2, prior='rest')
    assert config.prior_rest_s == REST_S
    train_frames = dataset.split(len(session), config)[0]
    np.testing.assert_allclose(
        config.rest_posture,
        dataset.rest_posture(
            session.facilitator[train_frames, :, :2], session.seen()[train_frames]
        ),
        atol=1e-6,
    )
    assert make_config([session], prior='rest', prior_rest_s=5.0).prior_rest_s == 5.0
    plain = Policy(make_config([session], d_model=16, layers=1, heads=2))
    rest = Policy(config)
    rest.load_state_dict(plain.state_dict())
    plain.config.noise_scale = rest.config.noise_scale = 0.0
    obs, _ = dataset.build([session], config, 'eval').batch(np.arange(3))
    proprio = obs['proprio']
    expected = rest_deltas(
        last_delta(proprio, config.history),
        posture(proprio),
        config.rest_posture,
        config.horizon,
        np.exp(-1 / (15 * config.prior_decay_s)),
        pull_per_frame(15.0, REST_S),
    )
    np.testing.assert_allclose(
        rest.sample(obs)[:, 0] - plain.sample(obs)[:, 0], expected, atol=1e-7
    )


def test_the_agent_executing_a_rest_prior_returns_a_raised_hand_a_hold_prior_keeps_it(session):
    """Closed loop, as rollouts and the node run it: integrator, bones, posture limits."""
    moved = simulate('teacher', 3, 20.0, 15.0, seed=6)
    wrist, elbow = JOINT['left_wrist'], JOINT['left_elbow']
    lift = np.zeros(len(moved))
    lift[150:] = 0.02  # the hand goes up at frame 150 and stays up
    moved.facilitator[:, [wrist, elbow], 1] -= lift[:, None]
    kept = {}
    for prior in ('damped_velocity', 'rest'):
        config = make_config([session], d_model=16, layers=1, heads=2, prior=prior)
        config.prior_decay_s, config.residual_gain = 0.01, 0.0  # the prior alone
        if prior == 'rest':
            config.prior_rest_s = 2.0
        agent = start_agent(Policy(config).eval(), moved, 200)
        start = agent.pose[wrist, 1]
        for i in range(60):
            plan = agent.plan(group_frame(moved, 200))
            agent.commit(moved.stamps_ns[200] + (i + 1) * int(1e9 / 15), plan.poses[0])
        kept[prior] = (agent.pose[wrist, 1] - start) / 0.02
    assert abs(kept['damped_velocity']) < 0.05  # holds the raised hand
    # 4 s at a 2 s pull, against the integrator's home pull on the body's centre: half way down
    assert kept['rest'] > 0.4


def test_a_joint_the_recording_missed_gives_the_prior_no_velocity(session):
    """Filled-in positions are not motion: the prior alone is the velocity baseline."""
    gappy = simulate('teacher', 3, 20.0, 15.0, seed=6)
    wrist = JOINT['left_wrist']
    gappy.facilitator[250:254, wrist, 2] = 0.0  # the detector lost the wrist for 4 frames
    gappy.facilitator[250:254, wrist, :2] += 0.03  # where a tracker guessed it, not where it was
    config = make_config([gappy], d_model=16, layers=1, heads=2, prior='damped_velocity')
    config.prior_decay_s, config.residual_gain = 0.3, 0.0  # the prior alone
    decay = np.exp(-1 / (15 * 0.3))
    frames = np.arange(248, 258)  # held-out frames
    data = dataset.build([gappy], config, 'eval')
    rows = np.flatnonzero(np.isin(data.where[:, 1], frames))
    assert len(rows) == len(frames)
    obs, _ = data.batch(rows)
    chunk = Policy(config).eval().sample(obs)[:, 0]
    fac = np.asarray(gappy.facilitator, np.float64)[..., :2]
    forecast = dataset.velocity_forecast(gappy, data.where[rows, 1], config.horizon, decay)
    np.testing.assert_allclose(
        apply_delta(fac[data.where[rows, 1]][:, None], np.cumsum(chunk, 1)), forecast, atol=1e-6
    )
    agent = start_agent(Policy(config).eval(), gappy, 254)  # history 252..254: wrist unseen
    history = agent.history()
    assert np.abs(history[1:, wrist] - history[:-1, wrist]).max() < 1e-12
    np.testing.assert_allclose(history[-1], fac[254], atol=1e-12)
