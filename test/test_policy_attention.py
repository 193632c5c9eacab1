"""The ``attention`` encoder: a learnt pointer to whom the facilitator faces, and its labels."""

import dataclasses

import numpy as np
import pytest
import torch

from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.train import make_config, train
from social_pose_diffusion.observation.features import pad_people, target_slots
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 4, 40.0, 30.0, seed=5)


def small_config(sessions, **kw):
    return make_config(
        sessions, encoder='attention', d_model=32, layers=1, heads=2, horizon=8, **kw
    )


def test_labels_are_whom_the_demonstration_faces_at_the_end_of_the_chunk(session):
    config = small_config([session])
    target = dataset.frame_features(session, config)['target']
    frames = np.arange(len(session) - config.horizon)
    np.testing.assert_array_equal(target[frames], session.attention()[frames + config.horizon - 1])
    assert set(np.unique(target)) == {-1, 0, 1, 2, 3}  # nobody before the first speaker

    hidden = session.participants.copy()
    hidden[:, 2, :, 2] = 0.0  # participant 2 never seen: facing them is facing nobody in view
    unseen = dataclasses.replace(session, participants=hidden)
    target = dataset.frame_features(unseen, config)['target']
    assert 2 not in target and (target[frames] == -1).sum() > (session.attention() == -1).sum()

    unlabelled = dataclasses.replace(
        session, speaker=np.full(len(session), -1), invite=np.full(len(session), -1), attend=None
    )
    assert unlabelled.attention() is None
    assert (dataset.frame_features(unlabelled, config)['target'] == -2).all()


def test_with_more_people_than_slots_a_label_follows_its_person_into_their_slot():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(200, 11, 3))
    mask = rng.random((200, 11)) < 0.6
    target = rng.integers(-1, 11, 200)
    padded, kept = pad_people(tokens, mask, 8)
    slots = target_slots(target, mask, 8)
    for i in range(200):
        if slots[i] >= 0:
            assert kept[i, slots[i]]
            np.testing.assert_array_equal(padded[i, slots[i]], tokens[i, target[i]])
        else:  # nobody, out of view, or beyond the kept slots
            shown = target[i] >= 0 and mask[i, target[i]]
            assert not shown or mask[i].sum() > 8


def test_the_pointer_learns_whom_and_the_chunk_depends_on_the_person_pointed_at(session):
    config = small_config([session], memory_s=(2.0, 30.0))
    policy, _ = train(config, [session], None, train_steps=400, device='cpu', seed=0)
    held = dataset.build([session], config, 'eval')
    labels = dataset.frame_features(session, config)['target'][held.where[:, 1]]
    tensors = policy.tensors(held.obs)
    with torch.no_grad():
        logits = policy.encoder.group.logits(tensors['tokens'], tensors['mask'])
    choice = logits.argmax(-1).numpy()
    choice[choice == config.max_people] = -1
    # four people and nobody: chance is far below this on the held-out 20 %
    assert np.mean(choice == labels) > 0.6

    obs = {k: v[:2] for k, v in held.obs.items()}
    generator = torch.Generator()
    free = policy.sample(obs, 2, generator=generator.manual_seed(1))
    chosen = choice[:2].copy()
    pointed = policy.sample({**obs, 'target': chosen}, 2, generator=generator.manual_seed(1))
    np.testing.assert_allclose(free, pointed, atol=1e-6)  # sampling follows the pointer
    other = np.where(chosen == 0, 1, 0)
    moved = policy.sample({**obs, 'target': other}, 2, generator=generator.manual_seed(1))
    assert np.abs(moved - free).max() > 1e-4


@pytest.mark.parametrize('family', ['flow', 'dbc'])
def test_every_policy_family_trains_the_pointer(session, family):
    config = small_config([session], policy=family)

    def scores(steps):
        policy, _ = train(
            config, [session], None, train_steps=steps, device='cpu', seed=0, critic_steps=2
        )
        return [p.detach().clone() for p in policy.encoder.group.score.parameters()]

    # only the cross-entropy reaches the pointer's scores: without it they would not move
    assert any(not torch.equal(a, b) for a, b in zip(scores(1), scores(6)))


def test_the_order_of_the_people_does_not_matter(session):
    config = small_config([session])
    torch.manual_seed(0)
    policy = Policy(config).eval()
    obs, _ = dataset.build([session], config, 'eval', stride=40).batch(np.arange(3))
    order = np.random.default_rng(0).permutation(obs['mask'].shape[1])
    shuffled = {**obs, 'tokens': obs['tokens'][:, order], 'mask': obs['mask'][:, order]}

    def chunks(o):
        return policy.sample(o, 2, generator=torch.Generator().manual_seed(1))

    np.testing.assert_allclose(chunks(shuffled), chunks(obs), atol=1e-5)


def test_sessions_without_speaker_labels_are_refused_in_one_line(session):
    unlabelled = dataclasses.replace(
        session, speaker=np.full(len(session), -1), invite=np.full(len(session), -1), attend=None
    )
    with pytest.raises(ValueError, match='speaker labels.*--encoder vector'):
        train(small_config([unlabelled]), [unlabelled], None, train_steps=1, device='cpu')
