"""The states the policy reaches driving itself, labelled back to the demonstration (DAgger).

DART-style perturbations (:func:`~.augment.perturbed`) push the head off rigidly and keep the
demonstration's own motion in the history. Driving itself, the policy goes off in its own
ways instead: a turn stopped short, a head sinking back, with its own motion in the history.
Teacher-forced, the default before these rounds held a finished turn; closed loop the
teacher's head fell back from 0.87 to 0.59 of the true turn within a second. So after
training, the policy
is rolled out as the node runs it on the training part of its sessions, every state it visits
becomes a sample whose chunk returns to the demonstration (:func:`~.augment.corrective`), and
training continues on both (Ross et al. 2011, DAgger; the labels are DART's).
"""

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from social_pose_diffusion.core.atomic import write_bytes
from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import JOINT, pose_delta
from social_pose_diffusion.learning.augment import corrective
from social_pose_diffusion.learning.dataset import Samples, split
from social_pose_diffusion.observation.features import centroid

ROLL_S = 6.0  # each closed-loop rollout; the teacher's turns fall back within 1-2 s
EVERY_S = 8.0  # one rollout starts this often along a session's training part
# Farther than this (normalised units) from the demonstration's elbows and wrists, the policy is
# making another gesture (the other hand, another moment), not the same one badly: the
# demonstration's chunk is then no correction but a switch of mode, and the state is not used.
# 97 % of the states visited away from invitations are within it, 71 % of those near one.
ARM_OFFSET = 0.02
ARMS = [JOINT[n] for n in ('left_elbow', 'right_elbow', 'left_wrist', 'right_wrist')]


@dataclass
class Visits:
    """Visited states, one row each.

    ``session`` index, frame ``t`` the next plan is made at, and the executed ``history``
    (N, K+1, J, 2) at the model's frame times.
    """

    session: np.ndarray
    t: np.ndarray
    history: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def save(self, path) -> None:
        """Atomically write ``path`` (.npz, no pickle)."""
        import io

        buffer = io.BytesIO()
        np.savez(buffer, session=self.session, t=self.t, history=self.history)
        write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path) -> 'Visits':
        with np.load(Path(path), allow_pickle=False) as z:
            return cls(z['session'], z['t'], z['history'])

    @classmethod
    def join(cls, parts: list['Visits']) -> 'Visits':
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def visit(
    policy,
    sessions: list[Session],
    samples: int = 4,
    roll_s: float = ROLL_S,
    every_s: float = EVERY_S,
    progress: bool = True,
) -> Visits:
    """The states ``policy`` visits driving itself as the node runs it.

    ``samples`` plans, their medoid executed, the session's style given; a rollout of
    ``roll_s`` starts every ``every_s`` along each session's training part, within a segment.
    """
    from social_pose_diffusion.evaluation.offline import group_frame
    from social_pose_diffusion.evaluation.social import PolicyFacilitator

    c, driver = policy.config, PolicyFacilitator(policy, samples)
    found: dict[str, list] = {'session': [], 't': [], 'history': []}
    for i, s in enumerate(tqdm(sessions, desc='closed-loop states', disable=not progress)):
        train = split(len(s), c)[0]
        if not len(train):
            continue
        steps, stop = int(round(roll_s * s.fps)), s.segment_bounds()[1]
        for t0 in range(int(train[0]), int(train[-1]), max(int(round(every_s * s.fps)), 1)):
            end = min(t0 + steps, int(stop[t0]) - c.horizon - 1, int(train[-1]))
            if end <= t0:
                continue
            driver.start(s, t0)
            for t in range(t0, end):
                driver.step(group_frame(s, t))
                found['session'].append(i)
                found['t'].append(t + 1)
                found['history'].append(driver.agent.history())
    if not found['t']:
        raise ValueError('no closed-loop states: the sessions are too short for a rollout')
    return Visits(
        np.asarray(found['session'], np.int64),
        np.asarray(found['t'], np.int64),
        np.asarray(found['history'], np.float64),
    )


def visited_samples(
    sessions: list[Session], config, visits: Visits, return_s: float
) -> list[Samples]:
    """One :class:`Samples` per session: its visited states with chunks back to the recording.

    The body is moved so its centre is the demonstration's (the seat anchor's business, not
    the policy's); what is left is the posture off the demonstration, head turn included.
    States with an elbow or wrist more than :data:`ARM_OFFSET` off are left out.
    """
    out = []
    for i in np.unique(visits.session):
        pick = visits.session == i
        session, rows, history = sessions[i], visits.t[pick], visits.history[pick]
        fac = np.asarray(session.facilitator, np.float64)[..., :2]
        shift = pose_delta(centroid(history[:, -1]), centroid(fac[rows]))
        history = history + shift[:, None, None, :]
        history[..., 0] %= 1.0
        offset = pose_delta(fac[rows], history[:, -1])
        same = np.linalg.norm(offset[:, ARMS], axis=-1).max(-1) <= ARM_OFFSET
        if not same.any():
            continue
        rows, history, offset = rows[same], history[same], offset[same]
        samples = corrective(session, config, rows, history, offset, return_s)
        samples.where[:, 0] = i
        out.append(samples)
    return out
