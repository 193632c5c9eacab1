"""The seat anchor: what is executed keeps a seated facilitator's shoulders at its seat."""

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import pose_delta
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.planning.agent import FacilitatorAgent
from social_pose_diffusion.planning.follower import Controller
from social_pose_diffusion.planning.seat import SeatAnchor, check_return_s, shoulder_midpoint
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)
FRAME_NS = 33_333_333


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 3, 12.0, 30.0, seed=3)


def offset(pose, seat):
    d = pose_delta(shoulder_midpoint(seat), shoulder_midpoint(pose))
    return float(np.linalg.norm(d))


def test_a_slow_slide_is_taken_off_a_quick_shrug_shows_and_the_shape_is_kept(session):
    seat = np.asarray(session.facilitator[0, :, :2], np.float64).copy()
    seat[:, 0] = (seat[:, 0] + 0.49) % 1.0  # across the seam: u wraps
    anchor = SeatAnchor(seat)
    slide = np.array([0.0004, -0.0002])  # per frame: 0.012 u/s, what integrated deltas do
    poses = [seat + k * slide for k in range(300)]
    out = [anchor(k * FRAME_NS, p, 0.5) for k, p in enumerate(poses)]
    assert offset(poses[-1], seat) > 0.1  # integrated: 10 s of slide
    assert offset(out[-1], seat) < 1.1 * np.linalg.norm(slide) * 30 * 0.5  # executed: its lag
    for p, o in zip(poses[::50], out[::50]):  # a translation only: the posture is the policy's
        np.testing.assert_allclose(pose_delta(o[5], o), pose_delta(p[5], p), atol=1e-12)
    shrug = SeatAnchor(seat)
    step = seat + np.array([0.0, -0.01])
    first = shrug(0, step, 0.5)
    assert offset(first, seat) == pytest.approx(0.01)  # a sudden move shows at once ...
    later = shrug(int(1.5e9), step, 0.5)
    assert offset(later, seat) == pytest.approx(0.01 * np.exp(-3), rel=1e-6)  # ... and settles
    still = SeatAnchor(seat)
    assert np.array_equal(still(0, poses[-1], 0.0), poses[-1] % [1.0, np.inf])


@pytest.mark.parametrize('value', [-0.1, float('nan'), float('inf'), True, '1'])
def test_a_bad_return_time_is_refused(value):
    with pytest.raises(ValueError, match='seat return time'):
        check_return_s(value)


def test_the_agent_executes_seated_poses_and_remembers_integrated_ones(session):
    torch.manual_seed(0)
    policy = Policy(make_config([session], d_model=32, layers=1, heads=2, horizon=8)).eval()
    policy.action_scale.fill_(0.002)  # untrained: its deltas wander, as a drift would
    start = np.asarray(session.facilitator[0, :, :2], np.float64)
    agents = {s: FacilitatorAgent(policy, seat_return_s=s, idle_alone=False) for s in (0.0, 0.5)}
    executed = {}
    for s, agent in agents.items():
        agent.reset(start)
        torch.manual_seed(0)
        for k in range(90):
            plan = agent.plan(GroupFrame(k * FRAME_NS))
            executed[s] = agent.execute(plan.stamps_ns[0], plan.poses[0])
            assert np.array_equal(agent.pose, plan.poses[0])  # integrated pose: its history
    drift = offset(agents[0.0].pose, start)
    assert drift > 0.002
    assert np.array_equal(executed[0.0], agents[0.0].pose)
    assert offset(executed[0.5], start) < 0.3 * offset(agents[0.5].pose, start)


def test_the_control_loop_publishes_seated_poses_and_commits_integrated_ones(session):
    policy = Policy(make_config([session], d_model=32, layers=1, heads=2, horizon=8)).eval()
    start = np.asarray(session.facilitator[0, :, :2], np.float64)
    agent = FacilitatorAgent(policy)
    control = Controller(lambda _agent: start)
    control.start(agent, FRAME_NS)
    assert control.plan(GroupFrame(0), 0, 5e9) == 'planned'
    agent.seat.drift = np.array([0.01, 0.0])  # as if the body had slid
    agent.seat_return_s = 1e9  # and the slide were slow
    tick, _ = control.tick(FRAME_NS)
    assert control.plan(GroupFrame(2 * FRAME_NS), 2 * FRAME_NS, 5e9) == 'planned'
    committed = agent.history()[-1]
    np.testing.assert_allclose(pose_delta(tick.pose, committed)[:, 0], 0.01, atol=1e-9)
