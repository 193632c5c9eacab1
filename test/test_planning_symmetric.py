"""Symmetric plans: half of them drawn for the mirrored scene, so no side is favoured."""

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import mirrored, mirrored_deltas
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.planning.agent import FacilitatorAgent
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def policy():
    session = simulate('teacher', 4, 10.0, 30.0, seed=2)
    torch.manual_seed(3)  # an untrained network: its plans lean to one side
    return Policy(make_config([session], d_model=16, layers=1, heads=2, horizon=4)).eval()


def symmetric_pose(policy):
    """The neutral pose made its own mirror image about its centroid."""
    pose = np.asarray(policy.config.neutral_pose, np.float64)
    seat = float(pose[:, 0].mean())
    return 0.5 * (pose + mirrored(pose, seat))


def sideways(policy, symmetric, samples=1000):
    """Each plan's first step sideways (the mean du of all joints) from a symmetric pose."""
    agent = FacilitatorAgent(policy, samples=samples, symmetric=symmetric, idle_alone=False)
    agent.reset(symmetric_pose(policy))
    torch.manual_seed(0)
    plan = agent.plan(GroupFrame(0))
    return (plan.samples[:, 0] - agent.pose[None])[..., 0].mean(-1)


def test_mirrored_deltas_undo_the_mirror_of_a_movement():
    rng = np.random.default_rng(0)
    a = np.c_[rng.uniform(0, 1, (13, 1)), rng.uniform(0.3, 0.7, (13, 1))]
    d = rng.normal(0, 0.01, (13, 2))
    moved = mirrored(a + d)
    np.testing.assert_allclose(mirrored(a) + mirrored_deltas(d), moved, atol=1e-12)
    np.testing.assert_allclose(mirrored(mirrored(a)), a, atol=1e-12)


def test_in_a_symmetric_scene_symmetric_plans_lean_to_neither_side(policy):
    plain, both = sideways(policy, symmetric=False), sideways(policy, symmetric=True)
    error = plain.std() / np.sqrt(len(plain))  # of a mean over the plans
    assert abs(plain.mean()) > 4 * error  # this untrained network leans
    assert abs(both.mean()) < 2 * error


def test_symmetric_plans_keep_the_number_of_samples(policy):
    for samples in (1, 3, 4):
        agent = FacilitatorAgent(policy, samples=samples, idle_alone=False)
        assert len(agent.plan(GroupFrame(0)).samples) == samples
