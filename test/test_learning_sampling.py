"""Which training samples are drawn how often: onsets and the styles' own sizes."""

import numpy as np
import pytest

from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.augment import Augmentation, sampling_weights
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.sources.sim import simulate


@pytest.fixture(scope='module')
def data():
    sessions = [simulate(s, 3, 20.0, 30.0, seed=8) for s in ('teacher', 'musician')]
    config = make_config(sessions, d_model=16, layers=1, heads=2)
    return sessions, dataset.build(sessions, config, 'train')


def test_plain_sampling_is_uniform(data):
    sessions, samples = data
    assert sampling_weights(samples, sessions, Augmentation()) is None


def test_a_style_that_moves_less_is_drawn_more_often_by_its_size(data):
    sessions, samples = data
    p = sampling_weights(samples, sessions, Augmentation(style_balance=1.0))
    musician = samples.where[:, 0] == 1

    def rms(rows):
        return np.sqrt(np.mean(samples.actions[rows] ** 2))

    ratio = p[musician].mean() / p[~musician].mean()
    assert ratio == pytest.approx(rms(~musician) / rms(musician), rel=1e-6)
    assert ratio > 1.5  # the musician moves about half as much as the teacher (whole body)
    squared = sampling_weights(samples, sessions, Augmentation(style_balance=2.0))
    assert squared[musician].mean() / squared[~musician].mean() == pytest.approx(ratio**2)


def test_onsets_are_drawn_more_often(data):
    sessions, samples = data
    p = sampling_weights(samples, sessions, Augmentation(onset_weight=2.0))
    assert np.isclose(p.sum(), 1.0) and p.max() == pytest.approx(3 * p.min())
