"""Learning core without training.

Deltas, observations, integrator, samplers, losses, metrics, model files.
"""

import json

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import (
    JOINT,
    NUM_JOINTS,
    bone_lengths,
    joint_distance,
    mpjpe,
    pose_delta,
)
from social_pose_diffusion.evaluation.metrics import (
    best_of_k_ade,
    bone_length_error,
    diversity,
    hand_choice,
    one_step_mpjpe,
    wrist_lift,
)
from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.planning.agent import FacilitatorAgent, medoid, medoid_index
from social_pose_diffusion.planning.integrator import Integrator
from social_pose_diffusion.policy import ModelError, Policy, load_policy
from social_pose_diffusion.policy.networks import StateActionDenoiser
from social_pose_diffusion.policy.objectives import dbc_loss, state_action_losses
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 3, 12.0, 30.0, seed=3)


def tiny_config(session, **kw):
    return make_config([session], d_model=32, layers=1, heads=2, horizon=8, **kw)


def test_actions_are_wrapped_deltas_of_the_future(session):
    s = Session(
        session.stamps_ns,
        session.participant_ids,
        session.participants.copy(),
        session.facilitator.copy(),
        session.speaker,
        session.invite,
        session.invite_hand,
        session.info,
    )
    s.facilitator[:, :, 0] = (
        s.facilitator[:, :, 0]
        - s.facilitator[0, 0, 0]
        + 0.999
        + 0.0005 * np.arange(len(s))[:, None]
    ) % 1.0  # walks across the u seam
    config = tiny_config(s)
    feats = dataset.frame_features(s, config)
    n = len(s)
    assert feats['actions'].shape == (n, config.horizon, NUM_JOINTS, 2)
    assert feats['proprio'].shape[0] == n and feats['tokens'].shape[:2] == (n, config.max_people)
    assert np.abs(feats['actions'][:, :, :, 0]).max() < 0.05  # no jump of ~1 at the seam
    t = 5
    np.testing.assert_allclose(
        feats['actions'][t, 0],
        (s.facilitator[t + 1, :, :2] - s.facilitator[t, :, :2] + 0.5) % 1.0 - 0.5,
        atol=1e-6,
    )


def test_observation_never_sees_the_facilitators_future(session):
    config = tiny_config(session)
    t = 100
    before = dataset.frame_features(session, config)
    changed = Session(**{**session.__dict__, 'facilitator': session.facilitator.copy()})
    changed.facilitator[t + 1 :, :, :2] += 0.05
    after = dataset.frame_features(changed, config)
    for key in ('proprio', 'tokens', 'mask'):
        np.testing.assert_array_equal(before[key][: t + 1], after[key][: t + 1])
    train, test = dataset.split(len(session), config)
    assert train.max() + config.horizon < test.min()


def test_integrator_keeps_bones_and_clamps_speed(session):
    pose = session.facilitator[0, :, :2].astype(np.float64)
    pose[:, 0] = (pose[:, 0] - pose[0, 0] + 0.999) % 1.0  # start on the seam
    speed = np.full(NUM_JOINTS, 0.004)
    integ = Integrator.for_pose(pose, speed)
    rng = np.random.default_rng(0)
    deltas = rng.normal(0, 0.01, (3, 300, NUM_JOINTS, 2))
    deltas[0] = np.array([0.002, 0.0])  # slow drift across the seam: the fast path
    poses = integ.rollout(np.broadcast_to(pose, (3,) + pose.shape), deltas)
    assert poses.shape == (3, 300, NUM_JOINTS, 2) and np.all(
        (poses[..., 0] >= 0) & (poses[..., 0] < 1)
    )
    np.testing.assert_allclose(
        bone_lengths(poses),
        np.broadcast_to(bone_lengths(pose), poses.shape[:2] + (11,)),
        rtol=1e-9,
    )
    path = np.concatenate([np.broadcast_to(pose, (3, 1) + pose.shape), poses], 1)
    assert joint_distance(path[:, :-1], path[:, 1:]).max() <= 0.004 * (1 + 1e-6)
    assert bone_length_error(poses, bone_lengths(pose)) < 1e-9
    stepped = integ.step(pose, deltas[1, 0])
    assert joint_distance(pose, stepped).max() <= 0.004 * (1 + 1e-6)
    leaky = Integrator.for_pose(pose, speed, leak=0.1)
    away = leaky.rollout(pose, np.full((30, NUM_JOINTS, 2), [0.001, 0.0]))
    back = leaky.rollout(away[-1], np.zeros((60, NUM_JOINTS, 2)))
    assert joint_distance(back[-1], pose).mean() < 0.05 * joint_distance(away[-1], pose).mean()
    np.testing.assert_allclose(
        bone_lengths(back), np.broadcast_to(bone_lengths(pose), (60, 11)), rtol=1e-9
    )
    anchored = integ.reanchor(pose, pose + 0.01, 1.0)
    np.testing.assert_allclose(bone_lengths(anchored), bone_lengths(pose), rtol=1e-9)


def test_sampler_evaluation_counts(session):
    obs, _ = dataset.build([session], tiny_config(session), 'eval').batch(np.arange(2))
    diffusion = Policy(tiny_config(session, policy='diffusion')).eval()
    diffusion.evaluations = 0
    assert diffusion.sample(obs, 3, 'diffusion_x').shape == (2, 3, 8, NUM_JOINTS, 2)
    assert diffusion.evaluations == 50 + 8
    diffusion.evaluations = 0
    diffusion.sample(obs, 1, 'ddim', 10)
    assert diffusion.evaluations == 10
    flow = Policy(tiny_config(session, policy='flow')).eval()
    flow.sample(obs, 2, 'euler', 3)
    assert flow.evaluations == 3
    with pytest.raises(ValueError):
        flow.sample(obs, 1, 'ddim')


def test_dbc_loss_sign():
    pred, target = torch.zeros(4, 2, 3), torch.ones(4, 2, 3)
    bc = float(((pred - target) ** 2).mean())
    worse, better = torch.full((4,), 2.0), torch.full((4,), 1.0)
    assert float(dbc_loss(pred, target, worse, better, 0.5)) == pytest.approx(bc + 0.5)
    assert float(dbc_loss(pred, target, better, worse, 0.5)) == pytest.approx(bc)  # clipped at 0
    critic = StateActionDenoiser(5 + 6, hidden=16)
    from social_pose_diffusion.policy.samplers import Schedule

    state, action = torch.randn(4, 5), torch.randn(4, 2, 3)
    a, e = state_action_losses(
        critic, Schedule(), state, action, action.clone(), torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(a, e)  # same noise and t for agent and expert


def test_metrics_against_hand_computed_values():
    a = np.zeros((NUM_JOINTS, 2)) + [0.99, 0.5]
    b = np.zeros((NUM_JOINTS, 2)) + [0.01, 0.5]
    assert mpjpe(a, b) == pytest.approx(0.02)
    assert one_step_mpjpe(a, np.full((NUM_JOINTS, 2), [0.02, 0.0]), b) == pytest.approx(
        0.0, abs=1e-12
    )
    assert one_step_mpjpe(a, np.zeros((NUM_JOINTS, 2)) + [0.0, 0.03], b) == pytest.approx(
        np.hypot(0.02, 0.03)
    )
    truth = np.zeros((1, 2, NUM_JOINTS, 2)) + 0.5
    samples = np.stack([truth[0] + [0.0, 0.01], truth[0] + [0.0, -0.03]])[None]  # (1, 2, H, J, 2)
    assert best_of_k_ade(samples, truth) == pytest.approx(0.01)
    assert diversity(samples) == pytest.approx(0.04)
    assert diversity(samples[:, :1]) == 0.0
    pose = simulate('musician', 3, 1.0, 30.0, seed=1).facilitator[0, :, :2].astype(np.float64)
    lengths = bone_lengths(pose)
    assert bone_length_error(pose, lengths * 1.1) == pytest.approx(1 / 11, rel=1e-6)
    start = np.zeros((NUM_JOINTS, 2)) + 0.5
    moved = np.repeat(start[None], 3, 0)
    moved[-1, JOINT['left_wrist'], 1] -= 0.04
    np.testing.assert_allclose(wrist_lift(moved, start), [0.04, 0.0])
    # Onset 0: a left, a right and a both-wrists sample; onset 1: two lefts and one too small to
    # count.
    lifts = np.array([[1.0, 0.0], [0.1, 0.9], [0.5, 0.4], [0.6, 0.1], [0.7, 0.2], [0.2, 0.05]])
    c = hand_choice(lifts, np.ones(6), np.array([0, 0, 0, 1, 1, 1]))
    assert c['gesture_rate'] == pytest.approx(5 / 6)
    assert (c['left'], c['right'], c['between']) == pytest.approx((0.6, 0.2, 0.2))
    assert c['both_hands'] == 0.5
    # The medoid the agent executes: per row, the sample with the least total distance to the
    # others.
    plans = np.zeros((2, 3, 1, NUM_JOINTS, 2)) + 0.5
    plans[0, :, ..., 1] += np.array([0.0, 0.01, 0.03])[:, None, None]
    plans[1, :, ..., 1] += np.array([0.02, 0.0, 0.03])[:, None, None]
    np.testing.assert_array_equal(medoid_index(plans), [1, 0])
    np.testing.assert_array_equal(medoid(plans[0]), plans[0, 1])


def test_model_files_round_trip_and_rejection(session, tmp_path):
    config = tiny_config(session, policy='bc')
    policy = Policy(config).eval()
    policy.action_scale.fill_(0.003)
    policy.save(tmp_path / 'm.safetensors')
    obs, _ = dataset.build([session], config, 'eval').batch(np.arange(3))
    for path in (tmp_path / 'm', tmp_path / 'm.json', tmp_path / 'm.safetensors'):
        np.testing.assert_allclose(
            load_policy(path, 'cpu').select_action(obs), policy.select_action(obs)
        )
    with pytest.raises(ModelError, match='not found'):
        load_policy(tmp_path / 'missing')
    weights = (tmp_path / 'm.safetensors').read_bytes()
    (tmp_path / 'm.safetensors').write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ModelError, match='safetensors'):
        load_policy(tmp_path / 'm')
    (tmp_path / 'm.safetensors').write_bytes(weights)
    cfg = json.loads((tmp_path / 'm.json').read_text())
    (tmp_path / 'm.json').write_text(json.dumps({**cfg, 'd_model': 48}))
    with pytest.raises(ModelError, match='does not match'):
        load_policy(tmp_path / 'm')
    (tmp_path / 'm.json').write_text(json.dumps({**cfg, 'format': 'something/else'}))
    with pytest.raises(ModelError, match='format'):
        load_policy(tmp_path / 'm')


def test_agent_plans_for_any_group(session):
    policy = Policy(tiny_config(session, policy='flow')).eval()
    agent = FacilitatorAgent(policy, fps=30.0, samples=3, idle_alone=False)  # the network on 0 too
    agent.reset()
    for n in (0, 2, 11):
        frame = GroupFrame(
            10**9 + n,
            np.arange(n, dtype=np.int32),
            np.repeat(session.participants[:1, :1].reshape(1, NUM_JOINTS, 3), n, 0),
        )
        plan = agent.plan(frame)
        assert plan.poses.shape == (8, NUM_JOINTS, 2) and plan.spread.shape == (8, NUM_JOINTS)
        assert (
            plan.stamps_ns[0] == frame.stamp_ns + 33_333_333 and plan.stamps_ns.dtype == np.int64
        )
        assert np.isfinite(plan.poses).all() and plan.spread.max() > 0
        agent.commit(plan.stamps_ns[0], plan.poses[0])
    single = FacilitatorAgent(policy, samples=1)
    single.reset(session.facilitator[0])
    assert single.plan(GroupFrame(0)).spread.max() == 0.0
    with pytest.raises(ValueError):
        FacilitatorAgent(
            Policy(tiny_config(session, encoder='raw')), samples=1, idle_alone=False
        ).plan(GroupFrame(0))


def test_perturbed_samples_return_the_head_to_the_demonstration(session):
    from social_pose_diffusion.learning.augment import Augmentation, perturbed
    from social_pose_diffusion.learning.train import make_config

    config = make_config([session])
    aug = Augmentation(pose_perturbation=1.0, return_s=0.2)
    samples = perturbed(session, config, 64, aug, np.random.default_rng(0))
    rows = samples.where[:, 1]
    fac = session.facilitator[:, :, :2].astype(np.float64)
    demo = pose_delta(
        fac[rows], fac[rows + config.horizon]
    )  # (N, J, 2) the demonstration's motion over the chunk
    correction = samples.actions.sum(1) - demo
    fade = np.exp(-config.horizon / (aug.return_s * session.fps))
    offset = -correction / (1 - fade)  # how far each joint was pushed off
    assert np.abs(offset[:, 0]).max() > 1e-4  # the head was pushed off ...
    assert np.allclose(offset[:, :5], offset[:, :1], atol=1e-6)  # ... as one ...
    assert np.abs(offset[:, 5:]).max() < 1e-6  # ... and the body follows the demonstration
    # The history shows the pushed pose, the chunk starts there and ends back on the demonstration.
    shown = samples.obs['proprio'][:, :26].reshape(-1, 13, 2)
    truth = dataset.frame_features(session, config)['proprio'][rows, :26].reshape(-1, 13, 2)
    assert np.abs(shown - truth).max() > 1e-4


def test_an_empty_room_adds_samples_that_see_nobody_and_hold_still(session):
    from social_pose_diffusion.learning.augment import Augmentation, with_perturbations

    config = make_config([session])
    samples = dataset.build([session], config, 'train', stride=10)
    grown = with_perturbations(
        samples, [session], config, Augmentation(empty_room=0.5), np.random.default_rng(0)
    )
    extra = slice(len(samples), None)
    assert len(grown) == len(samples) + round(0.5 * len(samples))
    assert samples.obs['mask'].any(-1).all()  # every real sample sees somebody ...
    assert not grown.obs['mask'][extra].any()  # ... the empty room nobody ...
    assert not grown.obs['tokens'][extra].any()
    assert not grown.actions[extra].any()  # ... and its facilitator keeps still
    assert grown.weights[extra].all()
    assert np.isin(grown.obs['proprio'][extra], samples.obs['proprio']).all()


def test_motion_memory_is_the_same_for_the_agent_and_the_dataset(session):
    from social_pose_diffusion.evaluation.offline import group_frame, start_agent
    from social_pose_diffusion.learning.dataset import frame_features
    from social_pose_diffusion.learning.train import make_config
    from social_pose_diffusion.policy import Policy

    config = make_config([session], memory_s=(2.0, 30.0))
    feats = frame_features(session, config)
    t = len(session) - 40
    agent = start_agent(Policy(config), session, t)
    obs = agent.observation(group_frame(session, t))
    assert np.array_equal(obs['tokens'][0], feats['tokens'][t])
    assert feats['tokens'][t][:4, -2:].max() > 0  # someone's arms moved


def test_guidance_contrasts_the_group_with_nobody_in_view(session):
    from social_pose_diffusion.learning.train import make_config

    config = make_config([session], group_dropout=0.2)
    policy = Policy(config).eval()
    obs = dataset.observations(session, config, np.array([100, 300]))
    draw = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = policy.sample(obs, 2, steps=1, generator=draw())
    policy.config.guidance = (
        1.0 + 1e-9
    )  # guided, but by a scale of one: the conditional model itself
    assert np.allclose(policy.sample(obs, 2, steps=1, generator=draw()), plain, atol=1e-6)
    policy.config.guidance = 3.0
    guided = policy.sample(obs, 2, steps=1, generator=draw())
    assert not np.allclose(guided, plain, atol=1e-6)
    nobody = {**obs, 'mask': np.zeros_like(obs['mask'])}
    policy.config.guidance = 1.0
    alone = policy.sample(nobody, 2, steps=1, generator=draw())
    # One Euler step, w = 3: guided - plain = 2 (plain - alone) exactly.
    assert np.allclose(guided - plain, 2 * (plain - alone), atol=1e-6)


def test_an_agent_with_motion_memory_plans_for_an_empty_frame(session):
    from social_pose_diffusion.learning.train import make_config

    agent = FacilitatorAgent(Policy(make_config([session], memory_s=(2.0, 30.0))), samples=2)
    assert agent.warm_up() > 0  # the policy node's warm-up samples for nobody in view
    agent.configure(samples=2, idle_alone=False)
    assert np.isfinite(agent.plan(GroupFrame(0)).poses).all()


def test_a_person_across_the_seam_is_plotted_on_both_edges(session):
    from social_pose_diffusion.observation.raster import plot_people

    person = np.array(session.participants[0, :1])
    person[..., 0] = (person[..., 0] - person[0, 5, 0] + 1.0) % 1.0  # left shoulder on the seam
    facilitator = np.asarray(session.facilitator[0])
    drawn = (plot_people(person, facilitator) != plot_people(person[:0], facilitator)).any(-1)
    assert drawn[:, :8].any() and drawn[:, -8:].any()  # at both edges ...
    assert not drawn[:, 16:-16].any()  # ... and no bone across the image


def test_temporal_ensembling_smooths_what_the_agent_executes(session):
    """An untrained policy's samples are noise: blending plans must calm the executed path."""
    from dataclasses import replace

    def executed(weight):
        policy = Policy(replace(tiny_config(session, policy='flow'), plan_weight=weight)).eval()
        torch.manual_seed(0)
        agent = FacilitatorAgent(policy, fps=30.0, samples=1)
        agent.reset(session.facilitator[0])
        path = []
        for t in range(40):
            frame = GroupFrame(
                10**9 + t * 33_333_333, session.participant_ids, session.participants[t]
            )
            plan = agent.plan(frame)
            agent.commit(plan.stamps_ns[0], plan.poses[0])
            path.append(plan.poses[0])
        return np.stack(path)

    def jerk(path):
        return np.abs(np.diff(path, 2, axis=0)).mean()

    assert jerk(executed(0.3)) < 0.6 * jerk(executed(1.0))
