"""Training data that teaches the policy to respond to the group, not coast on its own motion.

Behaviour cloning from observation histories learns to repeat its own last
movement when that predicts the next one well (a "copycat" policy); closed
loop, it then never starts a turn the group calls for and has no set-point to
return to once it is off. Three remedies, each measured by the closed-loop
social evaluation (:mod:`social_pose_diffusion.evaluation.social`):

- **history dropout**: a share of the training samples hide the facilitator's
  past deltas (they read as standing still), so the group has to explain the
  coming movement;
- **perturbed histories with corrective labels** (DART-style): extra samples
  whose head was pushed off the demonstration (a rigid offset on the scale
  of the session's own head turns, constant over the history) and whose
  action chunk brings it back within ``return_s``: the policy learns where to
  look, not only how to continue; ``posture_mix`` also pushes the whole body
  part of the way toward a posture taken elsewhere in the session (a tilted
  torso, raised arms) so every joint learns its way back;
- **onset weighting**: samples just after the facilitator's attention target
  changes (a new speaker, an invitation) are drawn more often;
- **an empty room**: extra samples that see nobody and hold still, so the
  facilitator's turns come from the group and not from its own momentum or
  the sampling noise (nobody in view: no turns).
"""

from dataclasses import dataclass

import numpy as np

from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import head_yaw, pose_delta
from social_pose_diffusion.learning.dataset import Samples, attended, split
from social_pose_diffusion.observation.features import (
    centroid,
    group_tokens,
    history_slice,
    motion_memory,
    pad_people,
    proprioception,
    with_style,
)

HEAD = list(range(5))  # nose, eyes, ears: a rigid tree, moved together


@dataclass
class Augmentation:
    """How much of each remedy a training run uses (all 0: plain behaviour cloning)."""

    history_dropout: float = 0.0  # share of samples whose past deltas are hidden
    pose_perturbation: float = 0.0  # perturbed samples added, per training sample
    perturbation_scale: float = 1.5  # head offset std, in units of the session's head-yaw std
    posture_mix: float = 0.0  # largest share of the way a body is pushed to another posture
    return_s: float = 0.3  # time constant of the corrective return
    onset_weight: float = (
        0.0  # extra sampling weight of the first ``onset_s`` after an attention change
    )
    onset_s: float = 1.0
    style_balance: float = 0.0  # x: a style drawn (pooled rms / its rms) ** x as often
    empty_room: float = 0.0  # samples with nobody in view that hold still, per training sample
    style_dropout: float = (
        0.2  # share of samples whose style is not said (the policy's default when unknown)
    )

    def __post_init__(self):
        for name in (
            'history_dropout',
            'pose_perturbation',
            'perturbation_scale',
            'posture_mix',
            'return_s',
            'onset_weight',
            'onset_s',
            'style_dropout',
            'empty_room',
            'style_balance',
        ):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f'{name} must be a finite number >= 0, not {value}')
        for name in ('history_dropout', 'style_dropout', 'posture_mix'):
            if getattr(self, name) > 1:
                raise ValueError(f'{name} is a share in [0, 1], not {getattr(self, name)}')


def perturbed(
    session: Session, config, count: int, augmentation: Augmentation, rng: np.random.Generator
) -> Samples:
    """``count`` training samples of ``session``.

    With the pose pushed off and a chunk that returns it.
    """
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    n = len(fac)
    rows = rng.choice(split(n, config)[0], count)
    # A rigid head offset on the scale of the session's own head turns.
    scale = augmentation.perturbation_scale * max(float(np.std(head_yaw(fac))), 1e-4)
    offset = np.zeros((count, 1) + fac.shape[1:])
    offset[:, 0, HEAD, 0] = rng.normal(0.0, scale, count)[:, None]
    offset[:, 0, HEAD, 1] = rng.normal(0.0, 0.5 * scale, count)[:, None]
    if augmentation.posture_mix > 0:  # the whole body part of the way to a posture it took
        other = fac[rng.choice(split(n, config)[0], count)]
        here = fac[rows]
        moved = other + pose_delta(centroid(other), centroid(here))[:, None]
        share = rng.uniform(0.0, augmentation.posture_mix, count)[:, None, None]
        offset[:, 0] += share * pose_delta(here, moved)
    past = np.clip(rows[:, None] + np.arange(-config.history, 1)[None], 0, n - 1)
    return corrective(
        session, config, rows, fac[past] + offset, offset[:, 0], augmentation.return_s, past
    )


def corrective(
    session: Session,
    config,
    rows: np.ndarray,
    history: np.ndarray,
    offset: np.ndarray,
    return_s: float,
    past: np.ndarray | None = None,
) -> Samples:
    """Samples at ``rows`` with chunks that bring a facilitator off the demonstration back.

    The facilitator had ``history`` (N, K+1, J, 2) instead of the demonstration's and is
    ``offset`` (N, J, 2) off it now; its chunk returns with time constant ``return_s``.
    ``past`` (N, K+1): the recorded frames of a history made from the recording (its unseen
    steps are no motion); None: every step of it was executed.
    """
    n, fps = len(session), session.fps
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    history = history.copy()
    now = history[:, -1]
    lagged = [session.participants[np.clip(rows - lag, 0, None)] for lag in config.lags]
    memory = (
        motion_memory(session.participants, fps, config.memory_s)[rows]
        if config.memory_s
        else None
    )
    tokens, seen = group_tokens(session.participants[rows], lagged, now, memory)
    tokens, mask = pad_people(tokens, seen, config.max_people)
    ahead = np.clip(rows[:, None] + np.arange(config.horizon + 1)[None], 0, n - 1)
    fade = np.exp(-np.arange(config.horizon + 1) / (return_s * fps))
    future = fac[ahead] + offset[:, None] * fade[None, :, None, None]
    future[..., 0] %= 1.0
    history[..., 0] %= 1.0
    actions = pose_delta(future[:, :-1], future[:, 1:]).astype(np.float32)
    steps_seen = None if past is None else session.seen()[past]
    proprio = with_style(
        proprioception(history, steps_seen), config.styles, session.info.get('style')
    )
    obs = {'proprio': proprio, 'tokens': tokens, 'mask': mask}
    if config.encoder_spec.attends:
        obs['target'] = attended(session, ahead[:, -2], seen, config.max_people)
    weights = np.ones(actions.shape[:-1], np.float32)  # every step of a corrective chunk is known
    return Samples(obs, actions, np.stack([np.full(len(rows), -1), rows], -1), weights)


def with_perturbations(
    samples: Samples,
    sessions: list[Session],
    config,
    augmentation: Augmentation,
    rng: np.random.Generator,
) -> Samples:
    """``samples`` plus perturbed and empty-room samples, so many per sample.

    ``pose_perturbation`` perturbed ones from each session alike, ``empty_room`` empty ones.
    """
    if config.encoder_spec.image_input:  # images: not drawn here
        return samples
    extra = []
    if augmentation.pose_perturbation > 0:
        for i, s in enumerate(sessions):
            count = int(round(augmentation.pose_perturbation * np.sum(samples.where[:, 0] == i)))
            e = perturbed(s, config, count, augmentation, rng)
            e.where[:, 0] = i
            extra.append(e)
    count = int(round(augmentation.empty_room * len(samples)))
    if count:
        extra.append(empty(samples, rng.choice(len(samples), count)))
    parts = [samples] + [e for e in extra if len(e)]
    return samples if len(parts) == 1 else Samples.join(parts)


def empty(samples: Samples, rows: np.ndarray) -> Samples:
    """Copies of ``rows`` with nobody in view and a chunk that holds the pose."""
    obs = {k: v[rows].copy() for k, v in samples.obs.items()}
    obs['tokens'][:] = 0.0
    obs['mask'][:] = False
    if 'target' in obs:
        obs['target'][:] = -1
    actions = np.zeros_like(samples.actions[rows])
    weights = np.ones(actions.shape[:-1], np.float32)
    return Samples(obs, actions, samples.where[rows].copy(), weights)


def sampling_weights(
    samples: Samples, sessions: list[Session], augmentation: Augmentation
) -> np.ndarray | None:
    """Sampling probabilities of the training samples, or None for uniform.

    Onsets weigh ``1 + onset_weight``; with ``style_balance`` x, a style's samples are drawn
    ``(pooled action rms / that style's rms) ** x`` as often, so one loss does not let the
    style that moves least count least.
    """
    if augmentation.onset_weight <= 0 and augmentation.style_balance <= 0:
        return None
    weights = np.ones(len(samples))
    for i, s in enumerate(sessions):
        target = s.attention()
        if target is None:
            continue
        changes = np.flatnonzero(np.r_[False, target[1:] != target[:-1]] & (target >= 0))
        near = np.zeros(len(s), bool)
        for c in changes:
            near[c : c + int(augmentation.onset_s * s.fps)] = True
        rows = samples.where[:, 0] == i
        weights[rows] += augmentation.onset_weight * near[samples.where[rows, 1]]
    if augmentation.style_balance > 0:
        style = np.array(
            [sessions[i].info.get('style', '') if i >= 0 else '' for i in samples.where[:, 0]]
        )

        def rms(rows):
            return float(np.sqrt(np.mean(samples.actions[rows] ** 2)))

        pooled = rms(style != '')
        for name in set(style) - {''}:
            weights[style == name] *= (pooled / rms(style == name)) ** augmentation.style_balance
    return weights / weights.sum()


def hide(obs: dict, config, augmentation: Augmentation, rng: np.random.Generator) -> dict:
    """A batch where a share of samples hides its past deltas and another its style.

    Hidden past deltas read as standing still.
    """
    proprio = obs['proprio'].copy()
    columns = np.arange(proprio.shape[1])
    parts = [(augmentation.history_dropout, columns[history_slice(config.history)])]
    if config.styles:
        parts.append((augmentation.style_dropout, columns[-len(config.styles) :]))
    for share, where in parts:
        if share > 0:
            proprio[np.ix_(rng.random(len(proprio)) < share, where)] = 0.0
    return {**obs, 'proprio': proprio}
