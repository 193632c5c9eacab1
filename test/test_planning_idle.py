"""Nobody in view: the agent holds the pose instead of moving on its own motion."""

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import head_yaw, joint_distance
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.planning.agent import FacilitatorAgent
from social_pose_diffusion.planning.follower import Controller
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)
FRAME_NS = 33_333_333


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 3, 6.0, 30.0, seed=4)


@pytest.fixture(scope='module')
def policy(session):
    torch.manual_seed(0)
    policy = Policy(make_config([session], d_model=16, layers=1, heads=2, horizon=4)).eval()
    policy.action_scale.fill_(0.002)  # untrained: its deltas wander
    return policy


def drive(policy, session, frames, idle_alone):
    """The agent's executed poses over ``frames`` (one per step) from the session's start."""
    agent = FacilitatorAgent(policy, samples=2, idle_alone=idle_alone)
    agent.reset(session.facilitator[0])
    torch.manual_seed(0)
    poses = []
    for frame in frames:
        plan = agent.plan(frame)
        poses.append(agent.execute(plan.stamps_ns[0], plan.poses[0]))
    return agent, np.stack(poses)


def nobody(k, people=3):
    """Frame ``k``: the ids are there, no keypoint is seen (a perception dropout)."""
    return GroupFrame(
        k * FRAME_NS, np.arange(1, people + 1, dtype=np.int32), np.zeros((people, 13, 3))
    )


def test_with_nobody_in_view_the_pose_is_held_and_counted(policy, session):
    frames = [nobody(k) if k % 2 else GroupFrame(k * FRAME_NS) for k in range(60)]
    agent, held = drive(policy, session, frames, idle_alone=True)
    _, wandered = drive(policy, session, frames, idle_alone=False)
    start = np.asarray(session.facilitator[0, :, :2], np.float64)
    assert joint_distance(held, start[None]).max() < 1e-9
    assert joint_distance(wandered[-1], start).mean() > 0.01  # the network alone moves
    assert np.ptp(head_yaw(held)) < 1e-9 < np.ptp(head_yaw(wandered))
    assert agent.idle_plans == 60


def test_plans_are_sampled_again_once_someone_is_seen(policy, session):
    group = [
        GroupFrame(k * FRAME_NS, session.participant_ids, session.participants[k])
        for k in range(10, 20)
    ]
    agent, poses = drive(policy, session, [nobody(k) for k in range(10)] + group, idle_alone=True)
    assert agent.idle_plans == 10
    assert joint_distance(poses[-1], poses[9]).mean() > 1e-4
    assert agent.plan(group[-1]).spread.max() > 0  # two sampled plans differ


def test_the_control_loop_reports_held_plans(policy, session):
    agent = FacilitatorAgent(policy)
    control = Controller(lambda _agent: session.facilitator[0])
    control.start(agent, FRAME_NS)
    for k in range(3):
        assert control.plan(nobody(k), k * FRAME_NS, 5e9) == 'planned'
    assert control.counts()['plans held (nobody in view)'] == 3
