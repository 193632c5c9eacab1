"""Aligned (observation, action chunk) samples from sessions, split 80/20 by time per session.

The action at frame t is the facilitator's next ``H`` per-frame deltas
(``pose_delta(f[t+i], f[t+i+1])``, u wrapping); the observation holds the
group up to t and the facilitator's poses t-K..t only. A training sample's
action chunk never reaches into the evaluation part of its session.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from social_pose_diffusion.observation.features import (group_tokens, motion_memory, pad_people,
                                                        proprioception, with_style)
from social_pose_diffusion.observation.raster import resize_frame
from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import MIRRORED_JOINTS, pose_delta


def frame_features(session, config):
    """Per-frame ``proprio`` (T, Fp), ``tokens`` (T, P, F), ``mask`` (T, P) and ``actions`` (T, H, J, 2)."""
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    n = len(fac)
    frames = np.arange(n)
    past = np.clip(frames[:, None] + np.arange(-config.history, 1)[None], 0, n - 1)
    lagged = [session.participants[np.clip(frames - lag, 0, None)] for lag in config.lags]
    memory = motion_memory(session.participants, session.fps, config.memory_s) if config.memory_s else None
    tokens, mask = group_tokens(session.participants, lagged, fac, memory)
    tokens, mask = pad_people(tokens, mask, config.max_people)
    ahead = np.clip(frames[:, None] + np.arange(config.horizon + 1)[None], 0, n - 1)
    proprio = with_style(proprioception(fac[past]), config.styles, session.info.get('style'))
    return {'proprio': proprio, 'tokens': tokens, 'mask': mask,
            'actions': pose_delta(fac[ahead[:, :-1]], fac[ahead[:, 1:]]).astype(np.float32)}


def split(n, config, train_fraction=0.8):
    """(train, eval) frame indices of an ``n``-frame session: first 80 % / last 20 % by time."""
    cut = int(round(n * train_fraction))
    return (np.arange(config.history, max(config.history, cut - config.horizon)),
            np.arange(cut, max(cut, n - config.horizon)))


def images(session, config, indices, raw_frame=None):
    """uint8 (N, 128, 128, 3) observation images of the config's encoder (plotted, raw frames)."""
    encoder = config.encoder_spec
    return np.stack([encoder.image(session.participants[t], session.facilitator[t],
                                   raw_frame(t) if raw_frame else None) for t in indices])


def cached_frames(render):
    """``raw_frame(t)``: ``render(t)`` resized to 128x128, each frame computed once."""
    cache = {}

    def frame(t):
        if t not in cache:
            cache[t] = resize_frame(render(t))
        return cache[t]
    return frame


def bag_frames(path, stamps_ns):
    """``raw_frame(t)`` for a bag: the newest camera frame at or before ``stamps_ns[t]``, decoded once, 128x128."""
    from social_pose_diffusion.sources.bags import iter_images
    stamps, frames = [], []
    for stamp, bgr in iter_images(path):
        stamps.append(stamp)
        frames.append(resize_frame(bgr))
    if not frames:
        raise ValueError(f'{path} holds no camera frames')
    order = np.argsort(stamps)
    stamps, frames = np.asarray(stamps)[order], np.stack(frames)[order]
    rows = np.clip(np.searchsorted(stamps, np.asarray(stamps_ns), side='right') - 1, 0, None)
    return lambda t: frames[rows[t]]


def mirror(session, raw_frame=None):
    """The left-right mirrored session (u -> 1 - u, left and right joints and hands swapped) and its frames.

    A mirrored discussion is as plausible as the original, so training on both
    balances the invitation hands exactly.
    """
    def flip(kp):
        out = np.array(kp)[..., MIRRORED_JOINTS, :]
        out[..., 0] = (1.0 - out[..., 0]) % 1.0
        return out
    hand = np.where(session.invite_hand >= 0, 1 - session.invite_hand, -1)
    mirrored = Session(session.stamps_ns, session.participant_ids, flip(session.participants),
                       flip(session.facilitator), session.speaker, session.invite, hand,
                       {**session.info, 'mirrored': True}, session.attend)
    return mirrored, (None if raw_frame is None else (lambda t: cv2.flip(raw_frame(t), 1)))


@dataclass
class Samples:
    """Stacked samples: ``obs`` (numpy dict for :meth:`Policy.tensors`), ``actions`` (N, H, J, 2), ``where`` (N, 2) = (session, frame)."""

    obs: dict
    actions: np.ndarray
    where: np.ndarray

    def __len__(self):
        return len(self.actions)

    def batch(self, rows):
        """The observation dict and actions of some rows."""
        return {k: v[rows] for k, v in self.obs.items()}, self.actions[rows]


def observations(session, config, indices, raw_frame=None, feats=None):
    """The observation dict (:meth:`Policy.tensors` input) of frames ``indices``; ``feats``: :func:`frame_features`."""
    feats = frame_features(session, config) if feats is None else feats
    obs = {key: feats[key][indices] for key in ('proprio', 'tokens', 'mask')}
    if config.encoder_spec.image_input:
        obs['image'] = images(session, config, indices, raw_frame)
    return obs


def build(sessions, config, part='train', stride=1, raw_frames=None):
    """:class:`Samples` of one part (``train``/``eval``) of every session, every ``stride``-th frame.

    ``raw_frames`` lists a ``raw_frame(t)`` callable (or None) per session.
    """
    obs, actions, where = [], [], []
    for s, session in enumerate(sessions):
        feats = frame_features(session, config)
        idx = split(len(session), config)[0 if part == 'train' else 1][::stride]
        obs.append(observations(session, config, idx, raw_frames[s] if raw_frames else None, feats))
        actions.append(feats['actions'][idx])
        where.append(np.stack([np.full(len(idx), s), idx], -1))
    out = {k: np.concatenate([o[k] for o in obs]) for k in obs[0]}
    return Samples(out, np.concatenate(actions), np.concatenate(where))


def load_sessions(bags=(), styles=(), seconds=90.0, seed=0, participants=4, raw=False, copies=1):
    """Sessions from rosbag2 paths and/or freshly simulated styles: (sessions, names, raw_frames or None).

    Style ``i`` gives ``copies`` simulated sessions with seeds ``seed + i + 10 j``
    (distinct turn-taking per style), rendered on demand for raw policies.
    """
    from social_pose_diffusion.sources.bags import read_session
    sessions, names, frames = [], [], []
    for path in bags:
        session = read_session(path)
        sessions.append(session)
        names.append(str(path))
        frames.append(bag_frames(path, session.stamps_ns) if raw else None)
    for j in range(copies):
        for i, style in enumerate(styles):
            from social_pose_diffusion.sources.sim import Renderer, simulate
            s = seed + i + 10 * j
            session = simulate(style, participants, seconds, 30.0, s)
            sessions.append(session)
            names.append(f'sim:{style}:seed{s}')
            frames.append(cached_frames(Renderer(session, seed=s).frame) if raw else None)
    if not sessions:
        raise ValueError('no sessions: give --bags and/or --simulate')
    return sessions, names, (frames if raw else None)
