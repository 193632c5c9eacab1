"""What the policy sees.

The facilitator's proprioception and the group, as vectors or 128x128 images.

All functions are vectorised over leading dimensions so the dataset (whole
sessions) and the agent (one frame) build identical features.

- proprioception: the facilitator's current pose relative to its centroid,
  the centroid's v and its last ``K`` per-frame deltas (never the future);
- ``vector``: one token per participant: every joint's (u relative to the
  facilitator's centroid, wrapped; v; confidence), its motion over each lag
  of ``lags`` frames, and the person's motion memory: their arm activity
  (speed of elbows and wrists) averaged with exponential time constants
  ``memory_s`` (who spoke recently, and for how long, seen as motion);
- ``plotted`` and ``raw`` images: see :mod:`social_pose_diffusion.observation.raster`.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import (
    JOINT,
    NUM_JOINTS,
    UPPER_BODY,
    joint_distance,
    pose_delta,
    wrap_u,
)

ARM_JOINTS = [JOINT[n] for n in ('left_elbow', 'right_elbow', 'left_wrist', 'right_wrist')]


def centroid(pose: ArrayLike) -> np.ndarray:
    """The (u, v) centre of the upper body, wrap-aware in u."""
    pose = np.asarray(pose, dtype=np.float64)[..., :2]
    ref = pose[..., UPPER_BODY[0], 0]
    du = wrap_u(pose[..., UPPER_BODY, 0] - ref[..., None]).mean(-1)
    return np.stack([(ref + du) % 1.0, pose[..., UPPER_BODY, 1].mean(-1)], -1)


def proprio_size(history: int, styles: Sequence[str] = ()) -> int:
    """Length of the proprioception vector for ``history`` past deltas.

    Plus a style code over ``styles``.
    """
    return NUM_JOINTS * 2 + 1 + history * NUM_JOINTS * 2 + len(styles)


def with_style(proprio: np.ndarray, styles: Sequence[str], style: str | None = None) -> np.ndarray:
    """``proprio`` (..., F) followed by the one-hot code of ``style`` among ``styles``.

    Zeros: not said.
    """
    code = np.zeros(proprio.shape[:-1] + (len(styles),), np.float32)
    if style in styles:
        code[..., styles.index(style)] = 1.0
    return np.concatenate([proprio, code], -1)


def style_code(proprio: ArrayLike, styles: Sequence[str]) -> np.ndarray:
    """The one-hot style code (..., len(styles)) at the end of ``proprio``: zeros, not said."""
    proprio = np.asarray(proprio, np.float32)
    return proprio[..., proprio.shape[-1] - len(styles) :]


def proprioception(poses: ArrayLike, seen: ArrayLike | None = None) -> np.ndarray:
    """Features of the facilitator's last ``K + 1`` poses ``(..., K+1, J, 2)``, oldest first.

    ``seen`` (..., K+1, J): a past step of a joint not seen at both ends is no motion (0), as
    its action is: a filled-in position moving to a detected one is not a velocity.
    """
    poses = np.asarray(poses, dtype=np.float64)[..., :2]
    now = poses[..., -1, :, :]
    c = centroid(now)
    shape = pose_delta(c[..., None, :], now)
    deltas = pose_delta(poses[..., :-1, :, :], poses[..., 1:, :, :])
    if seen is not None:
        seen = np.asarray(seen, bool)
        deltas = deltas * (seen[..., :-1, :] & seen[..., 1:, :])[..., None]
    lead = now.shape[:-2]
    return np.concatenate(
        [shape.reshape(*lead, -1), c[..., 1:], deltas.reshape(*lead, -1)], -1
    ).astype(np.float32)


def history_slice(history: int) -> slice:
    """Where the past deltas sit in the proprioception vector.

    Before them: the current pose; after: the style.
    """
    return slice(NUM_JOINTS * 2 + 1, proprio_size(history))


def token_size(lags: Sequence[int], memory_s: Sequence[float] = ()) -> int:
    """Length of one participant token."""
    return NUM_JOINTS * (3 + 2 * len(lags)) + len(memory_s)


def arm_speed(previous: ArrayLike, now: ArrayLike, dt: float) -> np.ndarray:
    """Mean speed (u/s) of each person's elbows and wrists seen in both frames.

    ``(..., P, J, 3)`` -> ``(..., P)``.
    """
    previous, now = np.asarray(previous, np.float64), np.asarray(now, np.float64)
    seen = (previous[..., ARM_JOINTS, 2] > 0) & (now[..., ARM_JOINTS, 2] > 0)
    d = joint_distance(previous[..., ARM_JOINTS, :2], now[..., ARM_JOINTS, :2]) * seen
    return d.sum(-1) / np.maximum(seen.sum(-1), 1) / max(dt, 1e-9)


def memory_step(
    memory: np.ndarray, speed: ArrayLike, dt: float, memory_s: Sequence[float]
) -> np.ndarray:
    """One causal update of the motion memory ``(..., P, M)``.

    With arm speeds ``(..., P)`` after ``dt`` seconds.
    """
    keep = np.exp(-dt / np.asarray(memory_s, np.float64))
    return memory * keep + (1.0 - keep) * np.asarray(speed, np.float64)[..., None]


def motion_memory(participants: ArrayLike, fps: float, memory_s: Sequence[float]) -> np.ndarray:
    """The motion memory ``(T, P, M)`` of a whole session's participants at every frame.

    Participants: ``(T, P, J, 3)``.
    """
    participants = np.asarray(participants, np.float64)
    out = np.zeros(participants.shape[:2] + (len(memory_s),))
    if not len(memory_s) or not len(participants):
        return out
    dt = 1.0 / fps
    speed = np.zeros(participants.shape[:2])
    speed[1:] = arm_speed(participants[:-1], participants[1:], dt)
    memory = np.zeros(out.shape[1:])
    for t in range(len(participants)):
        out[t] = memory = memory_step(memory, speed[t], dt, memory_s)
    return out


def group_tokens(
    now: ArrayLike,
    lagged: Sequence[ArrayLike],
    facilitator_pose: ArrayLike,
    memory: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Participant tokens ``(..., P, F)`` and presence mask ``(..., P)``.

    ``now`` is ``(..., P, J, 3)``, ``lagged`` a list of arrays of the same
    shape (the same people some frames earlier; confidence 0 = not seen),
    ``memory`` the people's motion memory ``(..., P, M)`` or None.
    """
    now = np.asarray(now, dtype=np.float64)
    conf = now[..., 2]
    c = centroid(facilitator_pose)[..., None, None, :]
    rel = np.stack([wrap_u(now[..., 0] - c[..., 0]), now[..., 1]], -1)
    parts = [rel * (conf[..., None] > 0), conf[..., None]]
    for past in lagged:
        past = np.asarray(past, dtype=np.float64)
        seen = (conf > 0) & (past[..., 2] > 0)
        parts.append(pose_delta(past[..., :2], now[..., :2]) * seen[..., None])
    feats = np.concatenate(parts, -1)
    lead = feats.shape[:-2]
    tokens = feats.reshape(*lead, feats.shape[-2] * feats.shape[-1])
    present = conf.max(-1) > 0
    if memory is not None:
        tokens = np.concatenate([tokens, np.asarray(memory, np.float64) * present[..., None]], -1)
    return tokens.astype(np.float32), present


def kept_people(mask: np.ndarray, max_people: int) -> np.ndarray:
    """Indices ``(..., max_people)`` of the most visible people, in their order (``n > max``)."""
    order = np.argsort(-mask.astype(np.float32), axis=-1, kind='stable')
    return np.sort(order[..., :max_people], -1)


def pad_people(
    tokens: np.ndarray, mask: np.ndarray, max_people: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``max_people`` most visible people (pad with empty tokens)."""
    n = tokens.shape[-2]
    if n > max_people:
        keep = kept_people(mask, max_people)
        tokens = np.take_along_axis(tokens, keep[..., None], -2)
        mask = np.take_along_axis(mask, keep, -1)
    elif n < max_people:
        pad = [(0, 0)] * (tokens.ndim - 2)
        tokens = np.pad(tokens, pad + [(0, max_people - n), (0, 0)])
        mask = np.pad(mask, pad + [(0, max_people - n)])
    return tokens, mask


def target_slots(target: ArrayLike, mask: np.ndarray, max_people: int) -> np.ndarray:
    """The token slot ``(N,)`` of each sample's attended participant, -1 for nobody.

    ``target`` (N,) is a participant index (-1 none), ``mask`` (N, P) who is
    in view before :func:`pad_people`; someone out of view counts as nobody.
    """
    target, mask = np.asarray(target, np.int64), np.asarray(mask, bool)
    rows = np.arange(len(target))
    seen = (target >= 0) & mask[rows, np.maximum(target, 0)]
    slot = target.copy()
    if mask.shape[-1] > max_people:
        kept = kept_people(mask, max_people) == target[:, None]
        seen &= kept.any(-1)
        slot = np.argmax(kept, -1)
    return np.where(seen, slot, -1)
