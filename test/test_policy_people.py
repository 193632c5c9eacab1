"""The ``people`` encoder: everyone is a token of the action network, as a set."""

import numpy as np
import pytest
import torch

from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def setup():
    session = simulate('teacher', 4, 12.0, 30.0, seed=5)
    config = make_config(
        [session], encoder='people', d_model=16, layers=1, heads=2, horizon=4, memory_s=(2.0,)
    )
    torch.manual_seed(0)
    policy = Policy(config).eval()
    obs, _ = dataset.build([session], config, 'train', stride=50).batch(np.arange(3))
    return policy, obs


def chunks(policy, obs):
    return policy.sample(obs, 2, steps=2, generator=torch.Generator().manual_seed(1))


def test_everyone_present_is_one_token_beside_the_pooled_group_and_the_proprioception(setup):
    policy, obs = setup
    cond = policy.encoder(policy.tensors(obs))
    assert cond.shape == (3, 1 + policy.config.max_people + 1, policy.config.d_model)


def test_the_order_of_the_people_does_not_matter(setup):
    policy, obs = setup
    order = np.random.default_rng(0).permutation(obs['mask'].shape[1])
    shuffled = {**obs, 'tokens': obs['tokens'][:, order], 'mask': obs['mask'][:, order]}
    np.testing.assert_allclose(chunks(policy, shuffled), chunks(policy, obs), atol=1e-5)


def test_what_an_absent_slot_holds_does_not_matter_and_each_person_present_does(setup):
    policy, obs = setup
    mask = obs['mask']
    assert (~mask).any(), 'the fixture needs empty slots'
    noisy = obs['tokens'].copy()
    noisy[~mask] = np.random.default_rng(1).normal(0, 5, noisy[~mask].shape)
    np.testing.assert_allclose(
        chunks(policy, {**obs, 'tokens': noisy}), chunks(policy, obs), atol=1e-5
    )
    first = int(np.flatnonzero(mask[0])[0])
    moved = obs['tokens'].copy()
    moved[0, first] += 1.0
    change = chunks(policy, {**obs, 'tokens': moved})[0] - chunks(policy, obs)[0]
    assert np.abs(change).max() > 1e-4
