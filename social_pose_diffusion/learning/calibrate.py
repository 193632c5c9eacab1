"""How far to trust the network's correction of its prior.

A gain fitted on held-back training time.

With a prior the policy's chunk is ``prior + gain * network``. The last
:data:`HELD_BACK` of every session's training frames is kept from the
optimiser; the gain of :data:`GAINS` whose chunks land closest to the truth
there is stored in the model. A network that does not generalise (a short,
noisy recording) so falls back toward its prior, the better of holding the
pose and damped constant velocity, instead of doing worse than it.
"""

import numpy as np

from social_pose_diffusion.learning.dataset import Samples

GAINS = (0.0, 0.25, 0.5, 0.75, 1.0)
HELD_BACK = 0.15


def subset(samples: Samples, rows) -> Samples:
    """The rows ``rows`` of ``samples``."""
    obs, actions = samples.batch(rows)
    return Samples(obs, actions, samples.where[rows], samples.weights[rows])


def held_back(samples: Samples, horizon: int, fraction: float = HELD_BACK):
    """(samples to fit, samples to calibrate on): the last ``fraction`` of each session's frames.

    Fitted chunks end before the held-back frames start, so none is seen twice.
    """
    session, frame = samples.where[:, 0], samples.where[:, 1]
    fit, held = np.zeros(len(samples), bool), np.zeros(len(samples), bool)
    for s in np.unique(session):
        rows = session == s
        lo, hi = frame[rows].min(), frame[rows].max()
        cut = lo + (1.0 - fraction) * (hi - lo)
        held |= rows & (frame >= cut)
        fit |= rows & (frame < cut - horizon)
    return subset(samples, np.flatnonzero(fit)), subset(samples, np.flatnonzero(held))


def residual_gain(policy, held: Samples, k: int = 4) -> float:
    """The gain of :data:`GAINS` with the least masked chunk error on ``held``.

    ``held`` holds residual actions.
    """
    obs, residual = held.batch(np.arange(len(held)))
    saved, policy.config.residual_gain = policy.config.residual_gain, 1.0
    try:
        prior = policy.prior(obs)
        net = policy.sample(obs, k).mean(1) - prior
    finally:
        policy.config.residual_gain = saved
    truth = np.cumsum(residual + prior, 1)
    w = held.weights
    errors = [
        float((np.linalg.norm(np.cumsum(prior + g * net, 1) - truth, axis=-1) * w).sum())
        for g in GAINS
    ]
    return float(GAINS[int(np.argmin(errors))])
