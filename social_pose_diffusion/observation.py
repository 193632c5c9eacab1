"""What the policy sees: the facilitator's proprioception and the group, as vectors or 128x128 images.

All functions are vectorised over leading dimensions so the dataset (whole
sessions) and the agent (one frame) build identical features.

- proprioception: the facilitator's current pose relative to its centroid,
  the centroid's v and its last ``K`` per-frame deltas (never the future);
- ``vector``: one token per participant: every joint's (u relative to the
  facilitator's centroid, wrapped; v; confidence) and its motion over each
  lag of ``lags`` frames;
- ``plotted``: participants (a colour per body part) and the facilitator
  (red) drawn on a white 128x128 equirectangular canvas (u over the width,
  the band of v where seated people appear over the height);
- ``raw``: the camera frame resized to 128x128.
"""
import cv2
import numpy as np

from .skeleton import BONES, JOINT_NAMES, NUM_JOINTS, UPPER_BODY, pose_delta, wrap_u

IMAGE_SIZE = 128
PLOT_BAND = (0.35, 0.75)  # v plotted: 27 deg above to 45 deg below the horizon, where seated people appear
SUBPIXEL_BITS = 4  # plotted at 1/16 pixel, anti-aliased: motions smaller than a pixel still change the image
FACILITATOR_COLOUR = (0, 0, 255)
# Participants' joints (and the bone to each from its parent) in BGR, one colour per body part as keypoint
# renderers draw them: head purple, left arm blue, right arm green/yellow, shoulders black, hips grey.
_PART = {'nose': (0, 0, 0), 'eye': (160, 0, 120), 'ear': (220, 0, 220), 'shoulder': (0, 0, 0),
         'left_elbow': (255, 140, 0), 'left_wrist': (255, 0, 0), 'right_elbow': (0, 170, 0),
         'right_wrist': (0, 200, 220), 'hip': (130, 130, 130)}
PART_COLOURS = [_PART.get(name, _PART.get(name.split('_')[-1])) for name in JOINT_NAMES]


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


def _pixels(uv, size):
    """Canvas pixels of (u, v): u over the whole width, v over :data:`PLOT_BAND` top to bottom."""
    top, bottom = PLOT_BAND
    return np.stack([np.asarray(uv[..., 0]) * size, (np.asarray(uv[..., 1]) - top) / (bottom - top) * size], -1)


def plot_people(participants, facilitator_pose, size=IMAGE_SIZE):
    """A white ``size`` x ``size`` BGR image with every person's skeleton.

    ``participants`` is ``(P, J, 3)``; bones crossing the u seam are skipped.
    Lines and joints are anti-aliased at sub-pixel positions.
    """
    img = np.full((size, size, 3), 255, np.uint8)
    people = [(p, PART_COLOURS) for p in np.asarray(participants, np.float64)]
    fac = np.concatenate([np.asarray(facilitator_pose, np.float64)[:, :2], np.ones((NUM_JOINTS, 1))], -1)
    for person, colours in people + [(fac, [FACILITATOR_COLOUR] * NUM_JOINTS)]:
        seen = person[:, 2] > 0
        px = np.round(_pixels(person, size) * (1 << SUBPIXEL_BITS)).astype(int)
        for a, b in BONES:
            if seen[a] and seen[b] and abs(person[a, 0] - person[b, 0]) < 0.5:
                cv2.line(img, tuple(px[a]), tuple(px[b]), colours[b], 1, cv2.LINE_AA, SUBPIXEL_BITS)
        for j in np.flatnonzero(seen):
            cv2.circle(img, tuple(px[j]), 1 << SUBPIXEL_BITS, colours[j], -1, cv2.LINE_AA, SUBPIXEL_BITS)
    return img


def resize_frame(bgr, size=IMAGE_SIZE):
    """The camera frame at ``size`` x ``size`` (area interpolation)."""
    return cv2.resize(np.asarray(bgr), (size, size), interpolation=cv2.INTER_AREA)
