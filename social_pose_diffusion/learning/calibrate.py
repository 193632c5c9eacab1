"""How far to trust the network's correction of its prior.

A gain fitted closed loop on held-back training time.

With a prior the policy's chunk is ``prior + gain * network``. The last
:data:`HELD_BACK` of every session's training frames is kept from the
optimiser; there the agent runs each gain of :data:`GAINS` as the policy
node runs it (its own executed poses as proprioception, the recorded group)
for up to :data:`ROLLOUT_S`, and the gain stored in the model is the one
whose worst error ratio to the prior alone (gain 0) over the horizons
:data:`HORIZONS_S` is least: a correction has to help, or at least not hurt,
at the first frame, at 1 s and over the whole rollout, not only on average.
Judged on its chunks alone (teacher-forced, the true past as input) a
correction that helped there made rollouts worse on held-out time of
real-like tracks: its small errors feed back into its own input; judged on
the whole rollout's mean error alone, gains that won over seconds cost up
to 16 % at one step. A network that does not generalise (a short, noisy
recording) so falls back toward its prior instead of doing worse than it.
"""

import numpy as np
import torch

from social_pose_diffusion.core.skeleton import joint_distance
from social_pose_diffusion.evaluation.offline import rollout_from, rollout_starts
from social_pose_diffusion.learning.dataset import Samples

GAINS = (0.0, 0.25, 0.5, 0.75, 1.0)
HELD_BACK = 0.15
ROLLOUT_S = 5.0  # rollout length (s), shortened to the held-back time less 0.5 s of starts
STARTS = 4  # rollouts per session and gain
PLANS = 4  # plans per step, medoid executed: the node's default
HORIZONS_S = (0.0, 1.0, ROLLOUT_S)  # error over the first frame, the first second, the rollout


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


def residual_gain(policy, sessions, held: Samples, seed: int = 0) -> float:
    """The gain of :data:`GAINS` with the least worst error ratio to gain 0 at :data:`HORIZONS_S`.

    ``held.where`` indexes sessions whose first ones are ``sessions`` (the
    recorded ones; training adds their mirror images after them, which are
    not rolled out). Every gain's rollouts draw the same sampling noise
    (``seed``); ties go to the smaller gain.
    """
    c = policy.config
    errors = np.zeros((len(GAINS), len(HORIZONS_S)))  # summed error, per gain and horizon
    weights = np.zeros_like(errors)
    saved = c.residual_gain
    try:
        for s, session in enumerate(sessions):
            frames = np.unique(held.where[held.where[:, 0] == s, 1])
            if not len(frames):
                continue
            end = int(frames[-1]) + c.horizon  # held-back chunks end there, in the training part
            span = (session.stamps_ns[end] - session.stamps_ns[frames[0]]) * 1e-9
            n = int(round(min(ROLLOUT_S, span - 0.5) * c.fps))
            if n < 1:
                continue
            fac = np.asarray(session.facilitator, np.float64)[..., :2]
            seen = session.seen()
            ends = [min(n, max(1, int(round(h * c.fps)))) for h in HORIZONS_S]
            for start in rollout_starts(session, frames, n, STARTS, c, end):
                for g, gain in enumerate(GAINS):
                    c.residual_gain = gain
                    torch.manual_seed(seed + int(start))
                    executed, rows, _ = rollout_from(policy, session, int(start), n, samples=PLANS)
                    w = (rows[:, None] >= 0) & seen[np.maximum(rows, 0)]
                    d = joint_distance(executed, fac[np.maximum(rows, 0)]) * w
                    for h, k in enumerate(ends):
                        errors[g, h] += float(d[:k].sum())
                        weights[g, h] += float(w[:k].sum())
    finally:
        c.residual_gain = saved
    return safest_gain(errors / np.maximum(weights, 1))


def safest_gain(errors: np.ndarray) -> float:
    """The gain of :data:`GAINS` whose worst ratio to gain 0 (row 0) over the horizons is least.

    ``errors``: (gains, horizons) mean errors; ties go to the smaller gain.
    """
    worst = (errors / np.maximum(errors[0], 1e-12)).max(1)
    return float(GAINS[int(np.argmin(worst))])
