"""What the policy sees: the facilitator's proprioception and the group, as vectors or 128x128 images.

All functions are vectorised over leading dimensions so the dataset (whole
sessions) and the agent (one frame) build identical features.

- proprioception: the facilitator's current pose relative to its centroid,
  the centroid's v and its last ``K`` per-frame deltas (never the future);
- ``vector``: one token per participant: every joint's (u relative to the
  facilitator's centroid, wrapped; v; confidence) and its motion over each
  lag of ``lags`` frames;
- ``plotted`` and ``raw`` images: see :mod:`social_pose_diffusion.observation.raster`.
"""
import numpy as np

from social_pose_diffusion.core.skeleton import NUM_JOINTS, UPPER_BODY, pose_delta, wrap_u

def centroid(pose):
    """The (u, v) centre of the upper body, wrap-aware in u."""
    pose = np.asarray(pose, dtype=np.float64)[..., :2]
    ref = pose[..., UPPER_BODY[0], 0]
    du = wrap_u(pose[..., UPPER_BODY, 0] - ref[..., None]).mean(-1)
    return np.stack([(ref + du) % 1.0, pose[..., UPPER_BODY, 1].mean(-1)], -1)


def proprio_size(history):
    """Length of the proprioception vector for ``history`` past deltas."""
    return NUM_JOINTS * 2 + 1 + history * NUM_JOINTS * 2


def proprioception(poses):
    """Features of the facilitator's last ``K + 1`` poses ``(..., K+1, J, 2)``, oldest first."""
    poses = np.asarray(poses, dtype=np.float64)[..., :2]
    now = poses[..., -1, :, :]
    c = centroid(now)
    shape = pose_delta(c[..., None, :], now)
    deltas = pose_delta(poses[..., :-1, :, :], poses[..., 1:, :, :])
    lead = now.shape[:-2]
    return np.concatenate([shape.reshape(*lead, -1), c[..., 1:], deltas.reshape(*lead, -1)], -1).astype(np.float32)


def token_size(lags):
    """Length of one participant token."""
    return NUM_JOINTS * (3 + 2 * len(lags))


def group_tokens(now, lagged, facilitator_pose):
    """Participant tokens ``(..., P, F)`` and presence mask ``(..., P)``.

    ``now`` is ``(..., P, J, 3)``, ``lagged`` a list of arrays of the same
    shape (the same people some frames earlier; confidence 0 = not seen).
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
    return feats.reshape(*lead, feats.shape[-2] * feats.shape[-1]).astype(np.float32), conf.max(-1) > 0


def pad_people(tokens, mask, max_people):
    """Keep the ``max_people`` most visible people (pad with empty tokens)."""
    n = tokens.shape[-2]
    if n > max_people:
        keep = np.sort(np.argsort(-mask.astype(np.float32), axis=-1, kind='stable')[..., :max_people], -1)
        tokens = np.take_along_axis(tokens, keep[..., None], -2)
        mask = np.take_along_axis(mask, keep, -1)
    elif n < max_people:
        pad = [(0, 0)] * (tokens.ndim - 2)
        tokens = np.pad(tokens, pad + [(0, max_people - n), (0, 0)])
        mask = np.pad(mask, pad + [(0, max_people - n)])
    return tokens, mask
