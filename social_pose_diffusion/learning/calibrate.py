"""How far to trust the network's correction of its prior.

A gain fitted closed loop on held-back training time.

With a prior the policy's chunk is ``prior + gain * network``. The last
:data:`HELD_BACK` of every session's training frames is kept from the
optimiser; there the agent runs each gain of :data:`GAINS` as the policy
node runs it (its own executed poses as proprioception, the recorded group)
for up to :data:`ROLLOUT_S`, and the gain whose rollouts stay closest to the
recording is stored in the model. Judged on its chunks alone (teacher-forced,
the true past as input) a correction that helped there made rollouts worse
on held-out time of real-like tracks: its small errors feed back into its
own input. A network that does not generalise (a short, noisy recording) so
falls back toward its prior instead of doing worse than it.
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
    """The gain of :data:`GAINS` whose closed-loop rollouts from ``held``'s frames err least.

    ``held.where`` indexes sessions whose first ones are ``sessions`` (the
    recorded ones; training adds their mirror images after them, which are
    not rolled out). Every gain's rollouts draw the same sampling noise
    (``seed``); ties go to the smaller gain.
    """
    c = policy.config
    errors = np.zeros(len(GAINS))
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
            for start in rollout_starts(session, frames, n, STARTS, c, end):
                for g, gain in enumerate(GAINS):
                    c.residual_gain = gain
                    torch.manual_seed(seed + int(start))
                    executed, rows, _ = rollout_from(policy, session, int(start), n, samples=PLANS)
                    w = (rows[:, None] >= 0) & seen[np.maximum(rows, 0)]
                    d = joint_distance(executed, fac[np.maximum(rows, 0)])
                    errors[g] += float((d * w).sum() / max(w.sum(), 1))
    finally:
        c.residual_gain = saved
    return float(GAINS[int(np.argmin(errors))])
