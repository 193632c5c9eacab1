"""Real recordings: gaps, unseen joints, the data's frame rate, rollouts that fit, hold and
velocity baselines."""

import json

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.resources import default_model
from social_pose_diffusion.core.session import Session, rate_mismatch, stream_fps
from social_pose_diffusion.core.skeleton import JOINT, NUM_JOINTS, joint_distance
from social_pose_diffusion.evaluation.metrics import best_of_k_ade, bone_length_error, masked_mpjpe
from social_pose_diffusion.evaluation.offline import evaluate, markdown
from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.train import make_config, train
from social_pose_diffusion.policy import Policy, load_policy
from social_pose_diffusion.policy.objectives import masked_mse
from social_pose_diffusion.policy.prior import (
    DECAY_GRID_S,
    HOLD_S,
    decay_per_frame,
    last_delta,
    prior_deltas,
)
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


def with_gaps(session, drop):
    """The session without the frames ``drop`` (as a bag without those facilitator messages
    reads)."""
    keep = np.setdiff1d(np.arange(len(session)), drop)
    return Session(
        session.stamps_ns[keep],
        session.participant_ids,
        session.participants[keep],
        session.facilitator[keep].copy(),
        session.speaker[keep],
        session.invite[keep],
        session.invite_hand[keep],
        dict(session.info),
    )


@pytest.fixture(scope='module')
def recording():
    """A 30 s, 15 fps session with gaps, a jump across one of them and never-seen ears."""
    s = with_gaps(simulate('teacher', 3, 30.0, 15.0, seed=4), np.r_[100:104, 300:308])
    s.facilitator[100:, :, 0] = (s.facilitator[100:, :, 0] + 0.05) % 1.0  # moved during the gap
    s.facilitator[:, [JOINT['left_ear'], JOINT['right_ear']], 2] = 0.0
    s.facilitator[:, [JOINT['left_ear'], JOINT['right_ear']], :2] = 0.0
    return s


def test_fps_comes_from_the_stamps_and_mismatches_are_named(recording):
    assert recording.fps == pytest.approx(15.0)
    recording.info['fps'] = 30.0  # metadata that disagrees loses to the data
    assert recording.fps == pytest.approx(15.0)
    assert stream_fps(recording.stamps_ns[:1]) is None
    assert rate_mismatch(30.0, 15.2) and '30.0 fps' in rate_mismatch(30.0, 15.2)
    assert rate_mismatch(15.0, 15.2) is None


def test_gaps_split_segments_and_no_delta_spans_them(recording):
    assert recording.segments() == [(0, 100), (100, 296), (296, len(recording))]
    config = make_config([recording], horizon=8)
    feats = dataset.frame_features(recording, config)
    w = feats['weights']
    assert w[99].sum() == 0 and w[95, 3].any() and not w[95, 4:].any()
    assert np.abs(feats['actions'][..., 0]).max() < 0.04  # the 0.05 jump is never an action
    # lags and history stay in the segment: frame 100's observation does not see frames before the
    # gap
    changed = Session(
        **{
            **recording.__dict__,
            'participants': recording.participants.copy(),
            'facilitator': recording.facilitator.copy(),
        }
    )
    changed.participants[:100, ..., :2] += 0.01
    changed.facilitator[:100, ..., :2] += 0.01
    again = dataset.frame_features(changed, config)
    np.testing.assert_array_equal(again['tokens'][100:], feats['tokens'][100:])
    np.testing.assert_array_equal(again['proprio'][100:], feats['proprio'][100:])
    unmoved = Session(**{**recording.__dict__, 'facilitator': recording.facilitator.copy()})
    unmoved.facilitator[100:, :, 0] = (unmoved.facilitator[100:, :, 0] - 0.05) % 1.0
    assert make_config([unmoved], horizon=8).max_speed == config.max_speed  # the jump is no speed


def test_unseen_joints_are_masked_never_learned_or_scored(recording):
    config = make_config([recording.filled()], horizon=8)
    samples = dataset.build([recording.filled()], config, 'train')
    ears = [JOINT['left_ear'], JOINT['right_ear']]
    assert not samples.weights[..., ears].any()
    assert samples.weights[..., JOINT['nose']].all(-1).mean() > 0.8
    filled = recording.filled().facilitator
    assert np.isfinite(filled).all() and not filled[..., ears, 2].any()
    np.testing.assert_array_equal(filled[:, :3], recording.facilitator[:, :3])  # seen: untouched
    assert joint_distance(filled[:, ears[0]], filled[:, JOINT['left_eye']]).max() < 0.05
    pred, true = np.zeros((4, NUM_JOINTS, 2)), np.zeros((4, NUM_JOINTS, 2))
    pred[:, ears] = 1.0
    weight = np.ones((4, NUM_JOINTS))
    weight[:, ears] = 0
    assert masked_mpjpe(pred, true, weight) == 0.0 and masked_mpjpe(pred, true) > 0
    assert best_of_k_ade(pred[:, None, None], true[:, None], weight[:, None]) == 0.0
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    m = torch.tensor([[1.0, 0, 0], [1, 0, 0]])
    assert masked_mse(a, b, m).item() == 1.0 and masked_mse(a, b * m, m).item() == 1.0
    lengths = np.full(11, 0.1)
    lengths[2] = 0.0  # a zero-length reference bone: not scored, never inf
    assert np.isfinite(bone_length_error(recording.facilitator[:5, :, :2], lengths))


def test_mixed_frame_rates_are_refused_and_windows_are_seconds(recording):
    other = simulate('teacher', 3, 10.0, 30.0, seed=1)
    with pytest.raises(ValueError, match='different frame rates'):
        make_config([recording, other])
    config = make_config([recording])
    assert (config.fps, config.horizon, config.history, config.lags) == (15.0, 8, 2, (3, 15, 30))
    assert make_config([other]).lags == (6, 30, 60)
    assert load_policy(default_model(), 'cpu').config.fps == 30.0  # the shipped model still loads


def test_velocity_forecast_is_exact_on_constant_velocity():
    s = simulate('teacher', 3, 4.0, 15.0, seed=2)
    s.facilitator[:, :, 0] = (s.facilitator[0, :, 0] + 0.001 * np.arange(len(s))[:, None]) % 1.0
    s.facilitator[:, :, 1] = s.facilitator[0, :, 1]
    pred = dataset.velocity_forecast(s, [10, 20], 5, 1.0)
    np.testing.assert_allclose(
        pred,
        s.facilitator[np.array([[11, 12, 13, 14, 15], [21, 22, 23, 24, 25]]), :, :2],
        atol=1e-6,
    )
    damped = dataset.velocity_forecast(s, [10], 3, 0.5)[0]
    steps = (damped[:, 0, 0] - s.facilitator[10, 0, 0]) / 0.001
    np.testing.assert_allclose(steps, [0.5, 0.75, 0.875], atol=1e-3)


def test_prior_is_added_to_the_network_output(recording):
    session = recording.filled()
    base = make_config([session], d_model=16, layers=1, heads=2)
    with_prior = make_config(
        [session],
        d_model=16,
        layers=1,
        heads=2,
        prior='damped_velocity',
        prior_decay_s=0.5,
        noise_scale=0.0,
    )
    a, b = Policy(base), Policy(with_prior)
    b.load_state_dict(a.state_dict())
    a.config.noise_scale = 0.0
    obs, _ = dataset.build([session], base, 'eval').batch(np.arange(3))
    expected = prior_deltas(
        last_delta(obs['proprio'], base.history), base.horizon, np.exp(-1 / (15 * 0.5))
    )
    np.testing.assert_allclose(b.sample(obs)[:, 0] - a.sample(obs)[:, 0], expected, atol=1e-7)
    assert np.abs(expected).max() > 0
    fitted = make_config([session], prior='damped_velocity')
    assert fitted.prior_decay_s in (HOLD_S,) + DECAY_GRID_S
    assert decay_per_frame(30.0, HOLD_S) < 1e-14  # holding is holding at a camera's rate too


def test_a_30s_recording_gets_rollouts_baselines_and_messages(recording):
    session = recording.filled()
    config = make_config([session], d_model=16, layers=1, heads=2)
    policy, _ = train(config, [session], train_steps=5, batch=8, progress=False)
    report = evaluate(
        policy, [session], k=2, starts=2, invitation_samples=2, progress=False, agent_samples=2
    )
    entry = report['sessions'][0]
    roll = entry['rollout']
    assert set(roll['mpjpe']) == {'1s', '5s'} == set(roll['hold_baseline'])
    assert set(roll['velocity_baseline']) == {'1s', '5s'}
    assert '10s' in roll['skipped'] and 'held-out time' in roll['skipped']['10s']
    assert any('10 s rollout' in w for w in entry['warnings'])
    for key in (
        'hold_one_step',
        'velocity_one_step',
        'hold_chunk',
        'velocity_chunk',
        'mpjpe_chunk_medoid',
    ):
        assert np.isfinite(entry[key]) and entry[key] > 0
    assert np.isfinite(
        [roll['bone_length_error'], roll['bone_error_vs_truth'], roll['bone_variation_data']]
    ).all()
    assert set(report['versus_baselines']) == {'one_step', 'chunk', 'rollout_1s', 'rollout_5s'}
    text = markdown(report)
    assert 'does not fit' in text and 'no worse' in text
    json.dumps(report)  # serialisable


def test_an_untrained_correction_falls_back_to_the_prior(recording, tmp_path):
    from social_pose_diffusion.learning.calibrate import GAINS, held_back

    session = recording.filled()
    config = make_config(
        [session], d_model=16, layers=1, heads=2, prior='damped_velocity', policy='bc'
    )
    samples = dataset.build([session], config, 'train')
    fit, held = held_back(samples, config.horizon)
    assert len(fit) and len(held)
    assert fit.where[:, 1].max() + config.horizon < held.where[:, 1].min()
    policy, _ = train(
        config, [session], tmp_path / 'run', train_steps=1, batch=8, progress=False, mirror=False
    )
    assert policy.config.residual_gain == 0.0 and 0.0 in GAINS  # a random network is not trusted
    assert load_policy(tmp_path / 'run', 'cpu').config.residual_gain == 0.0  # and saved so


def test_a_correction_that_wins_over_seconds_but_costs_at_one_step_is_scaled_down():
    from social_pose_diffusion.learning.calibrate import GAINS, safest_gain

    # rows: gains 0, 1/4, 1/2, 3/4, 1; columns: first frame, first second, whole rollout
    errors = np.array(
        [[1.0, 1.0, 1.0], [0.99, 0.98, 0.9], [1.0, 0.99, 0.8], [1.05, 1.0, 0.75], [1.16, 1.1, 0.7]]
    )
    assert GAINS == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert safest_gain(errors) == 0.25  # the whole rollout's mean alone would choose 1
    assert safest_gain(np.ones((5, 3))) == 0.0  # ties go to the prior
    worse_somewhere = [[1, 1, 1], [1.01, 0.5, 0.5], [0.5, 1.01, 0.5], [0.5, 0.5, 1.01], [2, 0, 0]]
    assert safest_gain(np.array(worse_somewhere)) == 0.0


def test_the_training_loss_ignores_masked_steps(recording):
    session = recording.filled()  # bc: the targets do not also enter the network's input
    config = make_config([session], d_model=16, layers=1, heads=2, policy='bc')
    samples = dataset.build([session], config, 'train')
    policy = Policy(config)
    obs, actions = samples.batch(np.arange(8))
    weight = samples.weights[:8].copy()
    weight[:, 3:] = 0.0
    changed = actions.copy()
    changed[:, 3:] += 1.0  # unknown steps: whatever they hold must not matter

    def loss(a, w):
        target = policy.normalise(a)
        return policy.loss(policy.tensors(obs), target, torch.Generator().manual_seed(0), w).item()

    assert loss(changed, weight) == pytest.approx(loss(actions, weight))
    assert loss(changed, None) != pytest.approx(loss(actions, None))
