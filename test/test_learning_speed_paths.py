"""The fast paths of planning give the results of straightforward references.

Skeleton, integrator, traced networks.
"""

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.skeleton import BONES, NUM_JOINTS, project_to_bones, wrap_u
from social_pose_diffusion.evaluation.offline import group_frame
from social_pose_diffusion.planning.agent import FacilitatorAgent
from social_pose_diffusion.planning.integrator import Integrator
from social_pose_diffusion.policy import Policy, PolicyConfig, load_policy, samplers
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


def ref_wrap(du):
    return -((-du + 0.5) % 1.0 - 0.5)


def ref_project(pose, lengths, reference=None):
    """Bone by bone in joint order (parents first), straight from the tangent-plane formulas."""
    out = np.array(pose, np.float64)

    def offset(x, parent, child):
        du = (
            ref_wrap(x[..., child, 0] - x[..., parent, 0])
            * 2
            * np.pi
            * np.sin(np.pi * x[..., parent, 1])
        )
        return np.stack([du, (x[..., child, 1] - x[..., parent, 1]) * np.pi], -1)

    def unit(off, fallback):
        norm = np.sqrt((off**2).sum(-1, keepdims=True))
        return np.where(norm > 1e-9, off / np.maximum(norm, 1e-12), fallback)

    for b, (parent, child) in enumerate(BONES):
        fallback = np.array([0.0, 1.0])
        if reference is not None:
            fallback = unit(offset(np.asarray(reference, np.float64), parent, child), fallback)
        d = unit(offset(out, parent, child), fallback) * lengths[b]
        s = np.maximum(np.sin(np.pi * out[..., parent, 1]), 1e-3)
        out[..., child, 0] = (out[..., parent, 0] + d[..., 0] / (2 * np.pi * s)) % 1.0
        out[..., child, 1] = out[..., parent, 1] + d[..., 1] / np.pi
    return out


def ref_rollout(integ, pose, deltas):
    """Clamp (with the leak) frame by frame, sum, project every pose.

    Step by step if the speed limit breaks.
    """
    pose = np.broadcast_to(pose, deltas.shape[:-3] + pose.shape[-2:])
    offset, offsets = np.zeros(pose.shape), []
    for i in range(deltas.shape[-3]):
        now = pose + offset
        ref = now[..., :1, 0]
        centre_u = (ref[..., 0] + ref_wrap(now[..., :11, 0] - ref).mean(-1)) % 1.0
        pull = np.stack(
            [
                ref_wrap(integ.home_centre[0] - centre_u),
                integ.home_centre[1] - now[..., :11, 1].mean(-1),
            ],
            -1,
        )
        d = deltas[..., i, :, :] + integ.leak * pull[..., None, :]
        norm = np.sqrt((d**2).sum(-1, keepdims=True))
        offset = offset + d * np.minimum(1.0, integ.max_speed[:, None] / np.maximum(norm, 1e-12))
        offsets.append(offset)
    moved = pose[..., None, :, :] + np.stack(offsets, -3)
    moved[..., 0] %= 1.0
    out = ref_project(moved, integ.lengths, np.broadcast_to(pose[..., None, :, :], moved.shape))
    path = np.concatenate([pose[..., None, :, :], out], -3)
    step = path[..., 1:, :, :] - path[..., :-1, :, :]
    step[..., 0] = ref_wrap(step[..., 0])
    if np.all(np.sqrt((step**2).sum(-1)) <= integ.max_speed * (1 + 1e-9)):
        return out, True
    return None, False


@pytest.fixture(scope='module')
def person():
    session = simulate('teacher', 3, 2.0, 30.0, seed=5)
    return np.asarray(session.facilitator[0], np.float64)[:, :2]


def test_wrap_u_is_the_shortest_signed_difference():
    du = np.random.default_rng(0).uniform(-3, 3, 10000)
    np.testing.assert_array_equal(wrap_u(du), ref_wrap(du))
    assert wrap_u(0.5) == 0.5 and wrap_u(-0.5) == 0.5 and wrap_u(0.25) == 0.25


@pytest.mark.parametrize('with_reference', [False, True])
def test_project_to_bones_matches_bone_by_bone_reference(person, with_reference):
    rng = np.random.default_rng(1)
    lengths = rng.uniform(0.02, 0.2, len(BONES))
    poses = person + rng.normal(0, 0.02, (6, 5, NUM_JOINTS, 2))
    poses[..., 0] = (
        poses[..., 0] + rng.choice([0.0, 0.49], (6, 1, 1))
    ) % 1.0  # some people straddle the seam
    poses[0, 0, 3] = poses[0, 0, 1]  # degenerate bones: the direction falls back
    poses[1, :, 8] = poses[1, :, 6]
    reference = person + rng.normal(0, 0.01, (6, 1, NUM_JOINTS, 2)) if with_reference else None
    np.testing.assert_allclose(
        project_to_bones(poses, lengths, reference),
        ref_project(poses, lengths, reference),
        rtol=0,
        atol=1e-13,
    )


@pytest.mark.parametrize('leak', [0.0, 0.01, 0.1])
@pytest.mark.parametrize(
    'step', [0.002, 0.005]
)  # within every joint's limit / the roots' limit clamps
def test_rollout_matches_frame_by_frame_reference(person, leak, step):
    rng = np.random.default_rng(int(leak * 100) + int(step * 1000))
    speed = np.full(NUM_JOINTS, 0.01)
    # The roots are slower than their children, so a clamp keeps the path within the limits.
    speed[[0, 5]] = 0.004
    integ = Integrator.for_pose(person, speed, leak)
    start = ref_project(person + rng.normal(0, 0.01, (4, 1, 2)), integ.lengths)
    angle = rng.uniform(0, 2 * np.pi, (4, 16, 1))
    deltas = step * np.stack([np.cos(angle), np.sin(angle)], -1) + rng.normal(
        0, 1e-5, (4, 16, NUM_JOINTS, 2)
    )
    expected, fast = ref_rollout(integ, start, deltas)
    assert fast
    np.testing.assert_allclose(integ.rollout(start, deltas), expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(integ.rollout(start[0], deltas[0]), expected[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        integ.rollout(person, deltas), ref_rollout(integ, person, deltas)[0], rtol=0, atol=1e-13
    )


def test_rollout_steps_frame_by_frame_when_the_summed_path_is_too_fast(person):
    rng = np.random.default_rng(7)
    speed = np.full(NUM_JOINTS, 0.004)
    integ = Integrator.for_pose(person, speed, 0.01)
    deltas = rng.normal(0, 0.01, (3, 12, NUM_JOINTS, 2))
    assert not ref_rollout(integ, person, deltas)[1]
    pose, expected = np.broadcast_to(person, (3, NUM_JOINTS, 2)), []
    for i in range(12):
        pose = integ.step(pose, deltas[:, i])
        expected.append(pose)
    np.testing.assert_allclose(
        integ.rollout(person, deltas), np.stack(expected, 1), rtol=0, atol=1e-13
    )


def eager_sample(policy, obs, k, generator):
    """What :meth:`Policy.sample` computes, with the eager modules."""
    c = policy.config
    with torch.inference_mode():
        cond = policy.encoder(policy.tensors(obs)).repeat_interleave(k, 0)
        x = torch.randn((cond.shape[0], c.horizon, c.action_dim), generator=generator)
        if c.policy == 'flow':
            x = samplers.euler(lambda y, tau: policy.net(cond, y, tau), x, c.steps)
        else:
            x = samplers.diffusion_x(
                lambda y, t: policy.net(cond, y, t.float() / c.timesteps),
                x,
                policy.schedule,
                c.extra_steps,
                generator,
            )
        return (x * policy.action_scale).reshape(-1, k, c.horizon, NUM_JOINTS, 2).double().numpy()


def test_traced_sampling_matches_the_eager_modules():
    shipped = load_policy('models/default', 'cpu')
    base = {'neutral_pose': shipped.config.neutral_pose, 'max_speed': shipped.config.max_speed}
    session = simulate('teacher', 3, 3.0, 30.0, seed=2)
    policies = [
        shipped,
        Policy(
            PolicyConfig(
                encoder='plotted',
                policy='diffusion',
                d_model=32,
                layers=1,
                heads=2,
                timesteps=10,
                extra_steps=2,
                **base,
            )
        ).eval(),
    ]
    for policy in policies:
        agent = FacilitatorAgent(policy)
        agent.reset(session.facilitator[0])
        for t, k in ((5, 1), (6, 4), (7, 1)):  # a new batch size after the trace was built
            obs = agent.observation(group_frame(session, t))
            np.testing.assert_allclose(
                policy.sample(obs, k, generator=torch.Generator().manual_seed(t)),
                eager_sample(policy, obs, k, torch.Generator().manual_seed(t)),
                rtol=0,
                atol=1e-6,
            )
        with torch.no_grad():  # a training step after tracing: the traces share the parameters
            for p in policy.parameters():
                p.mul_(1.01)
        np.testing.assert_allclose(
            policy.sample(obs, 2, generator=torch.Generator().manual_seed(0)),
            eager_sample(policy, obs, 2, torch.Generator().manual_seed(0)),
            rtol=0,
            atol=1e-6,
        )
