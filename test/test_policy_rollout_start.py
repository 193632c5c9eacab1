"""Rollouts (evaluation and calibration) start their episode at their start frame: the seat and
the integrator's home are the pose there, not the oldest history frame's."""

import numpy as np
import torch

from social_pose_diffusion.core.skeleton import JOINT
from social_pose_diffusion.evaluation.offline import rollout_from
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.policy.prior import HOLD_S
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


def test_a_rollout_holds_its_start_pose_not_an_older_history_pose():
    """A hold prior at gain 0 executes the start pose: the seat is where the rollout starts."""
    moved = simulate('teacher', 3, 20.0, 15.0, seed=6)
    t = 200
    shoulders = [JOINT['left_shoulder'], JOINT['right_shoulder']]
    moved.facilitator[: t - 1, :, 1] += 0.01  # the body two frames before t sat lower
    config = make_config([moved], d_model=16, layers=1, heads=2, prior='damped_velocity')
    config.prior_decay_s, config.residual_gain = HOLD_S, 0.0
    policy = Policy(config).eval()
    executed, rows, _ = rollout_from(policy, moved, t, 15, samples=1)
    start = np.asarray(moved.facilitator[t], np.float64)[:, :2]
    drift = np.abs(executed[:, shoulders] - start[shoulders]).max()
    assert drift < 1e-6  # drawn back to the older seat and home it moved 0.0095 in 1 s
