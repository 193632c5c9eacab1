"""Style units: each style's actions normalised by its own spread, and scaled back when sampled."""

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.skeleton import JOINT
from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.sources.sim import simulate

STYLES = ('musician', 'teacher')


@pytest.fixture(scope='module')
def setup():
    sessions = [simulate(style, 3, 20.0, 30.0, seed) for seed, style in enumerate(STYLES)]
    config = make_config(
        sessions, d_model=32, layers=1, heads=2, horizon=8, styles=STYLES, style_units=True
    )
    samples = dataset.build(sessions, config, 'train')
    policy = Policy(config).eval()
    policy.set_normalisation(
        samples.actions, samples.obs['proprio'], samples.obs['tokens'], samples.obs['mask']
    )
    return policy, samples


def test_each_style_is_measured_in_its_own_spread(setup):
    policy, samples = setup
    nose_u = 2 * JOINT['nose']
    musician, teacher = policy.style_scale[:, nose_u]
    assert musician < 0.8 < 1.0 < teacher  # the musician turns a third as far
    code = samples.obs['proprio'][:, -2:]
    rows = np.flatnonzero(code[:, 0] == 1)[:50]
    units = policy.normalise(samples.actions[rows], samples.obs['proprio'][rows])
    own = samples.actions[rows].reshape(len(rows), policy.config.horizon, -1)
    scale = (policy.action_scale * policy.style_scale[0]).numpy()
    np.testing.assert_allclose(units.numpy(), own / scale, rtol=1e-5)
    # No style said (the share whose style is hidden in training): the pooled units.
    hidden = samples.obs['proprio'][rows].copy()
    hidden[:, -2:] = 0.0
    pooled = policy.normalise(samples.actions[rows], hidden).numpy()
    np.testing.assert_allclose(pooled, own / policy.action_scale.numpy(), rtol=1e-5)


def test_sampled_chunks_come_back_in_the_styles_units(setup):
    policy, samples = setup
    code = samples.obs['proprio'][:, -2:]
    rows = np.r_[np.flatnonzero(code[:, 0] == 1)[:2], np.flatnonzero(code[:, 1] == 1)[:2]]
    obs = {key: value[rows] for key, value in samples.obs.items()}
    with torch.no_grad():
        policy.style_scale.fill_(1.0)
        torch.manual_seed(0)
        base = policy.sample(obs, 3)
        policy.style_scale[0].fill_(2.0)  # the musician's units twice the pooled
        torch.manual_seed(0)
        scaled = policy.sample(obs, 3)
    np.testing.assert_allclose(scaled[:2], 2 * base[:2], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(scaled[2:], base[2:], rtol=1e-5, atol=1e-12)


def test_style_units_need_styles():
    session = simulate('teacher', 3, 5.0, 30.0, 0)
    with pytest.raises(ValueError, match='style_units needs styles'):
        make_config([session], style_units=True)
