"""Closed-loop rounds (DAgger): visited states labelled back to the demonstration."""

import numpy as np
import pytest

from social_pose_diffusion.cli.main import main
from social_pose_diffusion.core.skeleton import JOINT, pose_delta
from social_pose_diffusion.learning import checkpoint
from social_pose_diffusion.learning.closed_loop import Visits, visited_samples
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.observation.features import centroid
from social_pose_diffusion.sources.sim import simulate

RETURN_S = 0.3


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 4, 20.0, 30.0, 4)


def _visits(session, config, head=0.0, shift=(0.0, 0.0)):
    """Visited states whose history is the demonstration's, head turned and body moved."""
    rows = np.arange(60, 400, 20)
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    past = rows[:, None] + np.arange(-config.history, 1)[None]
    history = fac[past].copy()
    history[..., :5, 0] += head
    history += np.asarray(shift)
    return Visits(np.zeros(len(rows), np.int64), rows + 0, history), fac, rows


def _chunk_end(samples, start):
    """Integrate each sample's chunk of deltas from ``start`` (N, J, 2)."""
    return start + samples.actions.astype(np.float64).sum(1)


def test_a_turned_head_is_brought_back_and_a_moved_body_is_not(session):
    config = make_config([session], memory_s=(2.0, 30.0))
    visits, fac, rows = _visits(session, config, head=0.02, shift=(0.03, 0.0))
    (samples,) = visited_samples([session], config, visits, RETURN_S)
    assert samples.where[:, 0].tolist() == [0] * len(rows)
    # the chunk starts at the visited pose, its centre put on the demonstration's, and ends
    # the same offset faded by exp(-H / (return_s * fps)) away from the demonstration
    now = visits.history[:, -1]
    start = now + pose_delta(centroid(now), centroid(fac[rows]))[:, None]
    offset = pose_delta(fac[rows], start)
    assert offset[:, :5, 0].min() > 0.01  # the head is still turned after the centring
    left = pose_delta(fac[rows + config.horizon], _chunk_end(samples, start))
    fade = np.exp(-config.horizon / (RETURN_S * session.fps))
    np.testing.assert_allclose(left, offset * fade, atol=1e-6)
    # a body only moved along the panorama gets the demonstration's own chunk
    moved, _, _ = _visits(session, config, shift=(0.03, 0.01))
    (plain,) = visited_samples([session], config, moved, RETURN_S)
    truth = pose_delta(
        fac[rows[:, None] + np.arange(config.horizon)],
        fac[rows[:, None] + 1 + np.arange(config.horizon)],
    )
    np.testing.assert_allclose(plain.actions, truth, atol=1e-6)
    np.testing.assert_allclose(
        centroid(moved.history[:, -1]) - centroid(fac[rows]), [[0.03, 0.01]] * len(rows)
    )


def test_states_making_another_gesture_are_left_out(session):
    config = make_config([session], memory_s=(2.0, 30.0))
    visits, _, rows = _visits(session, config)
    other = np.arange(len(rows)) % 2 == 1  # every other state has its right hand up
    visits.history[other, :, JOINT['right_wrist'], 1] -= 0.05
    (samples,) = visited_samples([session], config, visits, RETURN_S)
    assert samples.where[:, 1].tolist() == rows[~other].tolist()


def test_rounds_train_on_and_resume_with_the_same_states(tmp_path):
    out = tmp_path / 'run'
    base = ['train', '--simulate', 'teacher', '--seconds', '20', '--train-steps', '20']
    base += ['--closed-loop-steps', '10', '--condition-on-style', '--threads', '1']
    base += ['--memory', '2', '30', '--out', str(out)]
    assert main([*base, '--closed-loop-rounds', '1']) == 0
    assert checkpoint.saved_step(out) == 30
    first = (out / 'closed_loop_1.npz').read_bytes()
    visits = Visits.load(out / 'closed_loop_1.npz')
    assert len(visits) > 100 and np.isfinite(visits.history).all()
    assert main([*base, '--closed-loop-rounds', '2', '--resume']) == 0
    assert checkpoint.saved_step(out) == 40
    assert (out / 'closed_loop_1.npz').read_bytes() == first  # round 1's states reused
    assert (out / 'closed_loop_2.npz').is_file()
