"""Aligned (observation, action chunk) samples from sessions, split 80/20 by time per session.

The action at frame t is the facilitator's next ``H`` per-frame deltas
(``pose_delta(f[t+i], f[t+i+1])``, u wrapping); the observation holds the
group up to t and the facilitator's poses t-K..t only. A training sample's
action chunk never reaches into the evaluation part of its session.

Real recordings have gaps and unseen joints: nothing reaches across a gap
(history, lags and chunks stay inside the frame's segment, see
:meth:`Session.segments`) and ``weights`` (N, H, J) is 0 for every step
whose joint is unseen at either end, lies beyond the segment or the part's
end; losses and metrics use it, so nothing unseen is ever learned or scored.
"""

from dataclasses import dataclass
from itertools import count

import cv2
import numpy as np

from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import (
    UPPER_BODY,
    apply_delta,
    joint_distance,
    mirrored,
    pose_delta,
)
from social_pose_diffusion.observation.features import (
    group_tokens,
    motion_memory,
    pad_people,
    proprioception,
    target_slots,
    with_style,
)
from social_pose_diffusion.observation.raster import resize_frame
from social_pose_diffusion.policy.prior import (
    DECAY_GRID_S,
    decay_per_frame,
    posture,
    prior_deltas,
)


def step_weights(session, frames, horizon, end=None):
    """(N, H, J) float32.

    1 where step ``t+i -> t+i+1`` of joint j is seen at both ends, in the segment, before ``end``.
    """
    start, stop = session.segment_bounds()
    seen = session.seen()
    frames = np.asarray(frames)
    steps = frames[:, None] + np.arange(horizon)[None]
    limit = stop[frames][:, None] if end is None else np.minimum(stop[frames], end)[:, None]
    inside = steps + 1 < limit
    a, b = np.minimum(steps, len(session) - 1), np.minimum(steps + 1, len(session) - 1)
    return (inside[..., None] & seen[a] & seen[b]).astype(np.float32)


# The observation and action windows in seconds: PolicyConfig's frame counts at 30 fps.
HORIZON_S, HISTORY_S, LAGS_S = 16 / 30, 4 / 30, (0.2, 1.0, 2.0)
FPS_TOLERANCE = 0.05


def frames_for(fps, horizon_s=HORIZON_S, history_s=HISTORY_S, lags_s=LAGS_S):
    """The :class:`PolicyConfig` time fields at ``fps``.

    Windows in seconds as whole frames (at least 1).
    """

    def n(seconds):
        return max(1, int(round(seconds * fps)))

    return {
        'fps': round(float(fps), 6),
        'horizon': n(horizon_s),
        'history': n(history_s),
        'lags': tuple(n(s) for s in lags_s),
    }


def common_fps(sessions, names=None):
    """The one frame rate of ``sessions`` (from their stamps).

    Mixed rates are refused with the rates.
    """
    rates = [s.fps for s in sessions]
    if max(rates) > (1 + FPS_TOLERANCE) * min(rates):
        names = names or [f'session {i}' for i in range(len(sessions))]
        listed = ', '.join(f'{n}: {r:.2f} fps' for n, r in zip(names, rates))
        raise ValueError(
            f'sessions run at different frame rates ({listed}); a model has one '
            f'rate: train on '
            'sessions of one rate (or re-record/re-import them at one fps)'
        )
    return float(np.median(rates))


def frame_features(session, config):
    """Per-frame arrays.

    ``proprio`` (T, Fp), ``tokens`` (T, P, F), ``mask`` (T, P), ``actions`` (T, H, J, 2),
    ``weights`` (T, H, J), and for an attention encoder ``target`` (T,) (:func:`attended`).

    Unseen or out-of-segment steps have action 0 and weight 0.
    """
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    n = len(fac)
    frames = np.arange(n)
    start, stop = session.segment_bounds()
    past = np.clip(frames[:, None] + np.arange(-config.history, 1)[None], start[:, None], None)
    lagged = [session.participants[np.maximum(frames - lag, start)] for lag in config.lags]
    memory = (
        motion_memory(session.participants, session.fps, config.memory_s)
        if config.memory_s
        else None
    )
    tokens, seen = group_tokens(session.participants, lagged, fac, memory)
    tokens, mask = pad_people(tokens, seen, config.max_people)
    ahead = np.minimum(frames[:, None] + np.arange(config.horizon + 1)[None], stop[:, None] - 1)
    weights = step_weights(session, frames, config.horizon)
    actions = pose_delta(fac[ahead[:, :-1]], fac[ahead[:, 1:]]) * weights[..., None]
    proprio = with_style(
        proprioception(fac[past], session.seen()[past]), config.styles, session.info.get('style')
    )
    out = {
        'proprio': proprio,
        'tokens': tokens,
        'mask': mask,
        'actions': actions.astype(np.float32),
        'weights': weights,
    }
    if config.encoder_spec.attends:
        out['target'] = attended(session, ahead[:, -2], seen, config.max_people)
    return out


def attended(session, frames, seen, max_people):
    """The token slot (N,) of whom the facilitator faces at ``frames``.

    -1 nobody, -2 unknown (a recording without speaker labels): the labels of
    an attention-encoder policy, taken at the end of each sample's chunk so the
    chunk's movement is explained by them.
    """
    target = session.attention()
    if target is None:
        return np.full(len(frames), -2, np.int64)
    return target_slots(target[frames], seen, max_people)


def velocity_forecast(session, frames, steps, decay, rate=1.0):
    """Damped constant-velocity poses (N, steps, J, 2) from the true poses at ``frames``.

    The velocity is the last seen step inside the segment (none: hold);
    ``rate`` scales it to forecast steps of another length (session fps / step fps).
    """
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    frames = np.asarray(frames)
    prev = np.maximum(frames - 1, 0)
    known = step_weights(session, prev, 1)[:, 0] * (frames > 0)[:, None]
    v = pose_delta(fac[prev], fac[frames]) * known[..., None] * rate
    return apply_delta(fac[frames][:, None], np.cumsum(prior_deltas(v, steps, decay), 1))


def fit_decay_s(sessions, config, grid=None):
    """The velocity time constant (s) of the grid.

    The grid whose forecast fits the training chunks of ``sessions`` best.
    """
    errors = []
    for decay_s in grid or DECAY_GRID_S:
        num = den = 0.0
        for session in sessions:
            idx = split(len(session), config)[0]
            w = step_weights(session, idx, config.horizon)
            fac = np.asarray(session.facilitator, np.float64)[..., :2]
            truth = fac[np.minimum(idx[:, None] + np.arange(1, config.horizon + 1), len(fac) - 1)]
            pred = velocity_forecast(
                session, idx, config.horizon, decay_per_frame(session.fps, decay_s)
            )
            num += float((joint_distance(pred, truth) * w).sum())
            den += float(w.sum())
        errors.append(num / max(den, 1e-12))
    return float((grid or DECAY_GRID_S)[int(np.argmin(errors))])


def rest_posture(poses, seen):
    """The rest posture (J, 2) of ``poses`` (N, J, 2): per joint the median :func:`posture`.

    Over the frames that see the joint (all frames for a joint never seen), centred in u.
    """
    postures = posture(proprioception(np.asarray(poses, np.float64)[:, None]))
    seen = np.asarray(seen, bool)
    rest = np.stack(
        [
            np.median(postures[seen[:, j] if seen[:, j].any() else slice(None), j], 0)
            for j in range(postures.shape[1])
        ]
    )
    rest[:, 0] -= rest[list(UPPER_BODY), 0].mean()
    return rest


def step_speeds(session, frames):
    """Per-joint speeds (M, J) of the seen one-frame steps from ``frames`` (never across a gap)."""
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    frames = np.asarray(frames)
    w = step_weights(session, frames, 1)[:, 0] > 0
    speed = np.linalg.norm(
        pose_delta(fac[frames], fac[np.minimum(frames + 1, len(fac) - 1)]), axis=-1
    )
    return np.where(w, speed, 0.0)


def seen_poses(sessions, config):
    """The facilitator's poses (N, J, 2) in the training parts and which joints are seen (N, J)."""
    poses, seen = [], []
    for session in sessions:
        idx = split(len(session), config)[0]
        poses.append(np.asarray(session.facilitator, np.float64)[idx, :, :2])
        seen.append(session.seen()[idx])
    return np.concatenate(poses), np.concatenate(seen)


def split(n, config, train_fraction=0.8):
    """(train, eval) frame indices of an ``n``-frame session: first 80 % / last 20 % by time."""
    cut = int(round(n * train_fraction))
    return (
        np.arange(config.history, max(config.history, cut - config.horizon)),
        np.arange(cut, max(cut, n - config.horizon)),
    )


def min_frames(config, part: int) -> int:
    """The shortest session with a frame in :func:`split`'s ``part`` (0 train, 1 eval)."""
    return next(n for n in count(1) if len(split(n, config)[part]))


def images(session, config, indices, raw_frame=None):
    """uint8 (N, 128, 128, 3) observation images of the config's encoder (plotted, raw frames)."""
    encoder = config.encoder_spec
    return np.stack(
        [
            encoder.image(
                session.participants[t],
                session.facilitator[t],
                raw_frame(t) if raw_frame else None,
            )
            for t in indices
        ]
    )


def cached_frames(render):
    """``raw_frame(t)``: ``render(t)`` resized to 128x128, each frame computed once."""
    cache = {}

    def frame(t):
        if t not in cache:
            cache[t] = resize_frame(render(t))
        return cache[t]

    return frame


def bag_frames(path, stamps_ns):
    """``raw_frame(t)`` for a bag.

    The newest camera frame at or before ``stamps_ns[t]``, decoded once, 128x128.
    """
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
    """The left-right mirrored session and its frames.

    Mirrored: u -> 1 - u, left and right joints and hands swapped.

    A mirrored discussion is as plausible as the original, so training on both
    balances the invitation hands exactly.
    """
    hand = np.where(session.invite_hand >= 0, 1 - session.invite_hand, -1)
    flipped = Session(
        session.stamps_ns,
        session.participant_ids,
        mirrored(session.participants),
        mirrored(session.facilitator),
        session.speaker,
        session.invite,
        hand,
        {**session.info, 'mirrored': True},
        session.attend,
    )
    return flipped, (None if raw_frame is None else (lambda t: cv2.flip(raw_frame(t), 1)))


@dataclass
class Samples:
    """Stacked samples.

    ``obs`` (numpy dict for :meth:`Policy.tensors`), ``actions`` (N, H, J, 2), ``where`` (N, 2) =
    (session, frame).

    ``weights`` (N, H, J) is 1 for every seen step, 0 where the action is unknown (mask losses
    and metrics with it).
    """

    obs: dict
    actions: np.ndarray
    where: np.ndarray
    weights: np.ndarray | None = None

    def __len__(self):
        return len(self.actions)

    def batch(self, rows):
        """The observation dict and actions of some rows."""
        return {k: v[rows] for k, v in self.obs.items()}, self.actions[rows]

    @classmethod
    def join(cls, parts: list['Samples']) -> 'Samples':
        """The rows of every part, in order (each with weights)."""
        return cls(
            {k: np.concatenate([p.obs[k] for p in parts]) for k in parts[0].obs},
            np.concatenate([p.actions for p in parts]),
            np.concatenate([p.where for p in parts]),
            np.concatenate([p.weights for p in parts]),
        )


def observations(session, config, indices, raw_frame=None, feats=None):
    """The observation dict (:meth:`Policy.tensors` input) of frames ``indices``.

    ``feats``: :func:`frame_features`.
    """
    feats = frame_features(session, config) if feats is None else feats
    obs = {key: feats[key][indices] for key in ('proprio', 'tokens', 'mask')}
    if config.encoder_spec.image_input:
        obs['image'] = images(session, config, indices, raw_frame)
    return obs


def build(sessions, config, part='train', stride=1, raw_frames=None):
    """:class:`Samples` of one part (``train``/``eval``) of every session.

    Every ``stride``-th frame.

    ``raw_frames`` lists a ``raw_frame(t)`` callable (or None) per session.
    Frames whose chunk holds no seen step are left out.
    """
    obs, actions, where, weights = [], [], [], []
    for s, session in enumerate(sessions):
        feats = frame_features(session, config)
        train_idx, eval_idx = split(len(session), config)
        idx = (train_idx if part == 'train' else eval_idx)[::stride]
        # a training chunk stops where the evaluation part starts
        w = step_weights(
            session,
            idx,
            config.horizon,
            eval_idx[0] if part == 'train' and len(eval_idx) else None,
        )
        keep = w.reshape(len(idx), -1).any(-1)
        idx, w = idx[keep], w[keep]
        obs.append(
            observations(session, config, idx, raw_frames[s] if raw_frames else None, feats)
        )
        if part == 'train' and config.encoder_spec.attends:  # labels, never an evaluation input
            obs[-1]['target'] = feats['target'][idx]
        actions.append(feats['actions'][idx] * w[..., None])
        weights.append(w)
        where.append(np.stack([np.full(len(idx), s), idx], -1))
    out = {k: np.concatenate([o[k] for o in obs]) for k in obs[0]}
    return Samples(out, np.concatenate(actions), np.concatenate(where), np.concatenate(weights))


def load_sessions(
    bags=(),
    styles=(),
    seconds=90.0,
    seed=0,
    participants=4,
    raw=False,
    copies=1,
    group_topic=None,
):
    """Sessions from rosbag2 paths and/or freshly simulated styles.

    Returns (sessions, names, raw_frames or None).

    Style ``i`` gives ``copies`` simulated sessions with seeds ``seed + i + 10 j``
    (distinct turn-taking per style), rendered on demand for raw policies.
    Unseen facilitator joints get positions for the observations only
    (:meth:`Session.filled`); simulated sessions run at the bags' frame rate.
    ``group_topic`` reads the bags' group from another topic, e.g. the
    ``/humans/keypoints/detected`` that ``extract --bag`` adds to a simulated bag:
    the group as perception sees it, beside the demonstrated facilitator.
    """
    from social_pose_diffusion.sources.bags import read_session

    sessions, names, frames = [], [], []
    for path in bags:
        session = (read_session(path, group_topic) if group_topic else read_session(path)).filled()
        sessions.append(session)
        names.append(str(path))
        frames.append(bag_frames(path, session.stamps_ns) if raw else None)
    fps = common_fps(sessions, names) if sessions else 30.0
    for j in range(copies):
        for i, style in enumerate(styles):
            from social_pose_diffusion.sources.sim import Renderer, simulate

            s = seed + i + 10 * j
            session = simulate(style, participants, seconds, fps, s)
            sessions.append(session)
            names.append(f'sim:{style}:seed{s}')
            frames.append(cached_frames(Renderer(session, seed=s).frame) if raw else None)
    if not sessions:
        raise ValueError('no sessions: give --bags and/or --simulate')
    return sessions, names, (frames if raw else None)
