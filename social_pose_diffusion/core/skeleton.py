"""The joint set, its bones and the equirectangular coordinate conventions.

Keypoints live in normalised equirectangular coordinates:
``u = azimuth / 360deg`` in [0, 1) and wrapping at 1 (u = 0.5 is the camera's
forward axis, u grows to the right of the image), ``v = polar angle / 180deg``
in [0, 1] (0 straight up, 0.5 the horizon). A pose is an array ``(..., J, 2)``
of (u, v), a keypoint set ``(..., J, 3)`` adds a confidence in [0, 1].

Distances between keypoints of one person are measured on the sphere's local
tangent plane (radians), so bone lengths do not change when a person sits
near the seam or near a pole.
"""

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

JOINT_NAMES = (
    'nose',
    'left_eye',
    'right_eye',
    'left_ear',
    'right_ear',
    'left_shoulder',
    'right_shoulder',
    'left_elbow',
    'right_elbow',
    'left_wrist',
    'right_wrist',
    'left_hip',
    'right_hip',
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT = {name: i for i, name in enumerate(JOINT_NAMES)}
# Index of each joint in MediaPipe's 33-landmark pose topology.
MEDIAPIPE_INDEX = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24)
# Rigid bones as a forest: the head (rooted at the nose) and the upper body
# (rooted at the left shoulder); the neck is not rigid in the image, so the two
# trees are not linked. Every parent precedes its children.
PARENTS = (-1, 0, 0, 1, 2, -1, 5, 5, 6, 7, 8, 5, 6)
BONES = tuple((PARENTS[j], j) for j in range(NUM_JOINTS) if PARENTS[j] >= 0)
_BONE_PARENTS, _BONE_CHILDREN = (np.array(x) for x in zip(*BONES))
# Joints that carry a seated person's signal (hips hide behind tables).
UPPER_BODY = tuple(range(11))
# Each joint's left/right counterpart: the joint order of a mirrored person.
MIRRORED_JOINTS = tuple(
    JOINT[n.replace('left', 'right') if 'left' in n else n.replace('right', 'left')]
    for n in JOINT_NAMES
)


def mirrored(keypoints: ArrayLike, about_u: float = 0.5) -> np.ndarray:
    """Keypoints ``(..., J, C)`` seen in a mirror: u reflected about ``about_u``.

    Left and right joints swap places; a mirrored scene is as plausible as the original.
    """
    out = np.array(keypoints)[..., MIRRORED_JOINTS, :]
    out[..., 0] = (about_u - wrap_u(out[..., 0] - about_u)) % 1.0
    return out


def mirrored_deltas(deltas: ArrayLike) -> np.ndarray:
    """Per-joint (du, dv) ``(..., J, 2)`` of the mirrored movement."""
    out = np.array(deltas)[..., MIRRORED_JOINTS, :]
    out[..., 0] *= -1.0
    return out


def wrap_u(du: ArrayLike) -> np.ndarray:
    """Shortest signed difference on the azimuth circle, in (-0.5, 0.5]."""
    return 0.5 - (0.5 - np.asarray(du)) % 1.0


def pose_delta(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Per-joint (du, dv) taking pose ``a`` to pose ``b``; du wraps."""
    d = np.asarray(b, dtype=np.float64)[..., :2] - np.asarray(a, dtype=np.float64)[..., :2]
    d[..., 0] = wrap_u(d[..., 0])
    return d


def apply_delta(pose: ArrayLike, delta: ArrayLike) -> np.ndarray:
    """Pose moved by a per-joint (du, dv); u is returned in [0, 1)."""
    out = np.asarray(pose, dtype=np.float64)[..., :2] + np.asarray(delta, dtype=np.float64)
    out[..., 0] %= 1.0
    return out


def joint_distance(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Per-joint Euclidean distance in normalised equirect units, u wrap-aware."""
    return np.linalg.norm(pose_delta(a, b), axis=-1)


def mpjpe(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean per-joint position error in normalised equirect units (u wraps)."""
    return float(np.mean(joint_distance(pred, true)))


def tangent_offset(origin: ArrayLike, point: ArrayLike) -> np.ndarray:
    """Offset of ``point`` from ``origin`` on the tangent plane at ``origin`` (radians)."""
    d = pose_delta(origin, point)
    d[..., 0] = (
        d[..., 0] * 2 * np.pi * np.sin(np.pi * np.asarray(origin, dtype=np.float64)[..., 1])
    )
    d[..., 1] *= np.pi
    return d


def from_tangent(origin: ArrayLike, offset: np.ndarray) -> np.ndarray:
    """Inverse of :func:`tangent_offset`: the (u, v) at ``offset`` from ``origin``."""
    origin = np.asarray(origin, dtype=np.float64)[..., :2]
    s = np.maximum(np.sin(np.pi * origin[..., 1]), 1e-3)
    delta = np.empty(np.broadcast_shapes(origin.shape, np.shape(offset)))
    delta[..., 0] = offset[..., 0] / (2 * np.pi * s)
    delta[..., 1] = offset[..., 1] / np.pi
    return apply_delta(origin, delta)


def bone_offsets(pose: ArrayLike) -> np.ndarray:
    """Tangent offset of every bone's child from its parent (radians), ``(..., len(BONES), 2)``."""
    pose = np.asarray(pose, dtype=np.float64)
    return tangent_offset(pose[..., _BONE_PARENTS, :2], pose[..., _BONE_CHILDREN, :2])


def bone_lengths(pose: ArrayLike) -> np.ndarray:
    """Length of every bone in :data:`BONES` (radians), shape ``(..., len(BONES))``."""
    return np.linalg.norm(bone_offsets(pose), axis=-1)


def _bone_levels():
    """Bones grouped by depth in the forest: ``(parents, children, bone indices)`` per level."""
    depth = [0] * NUM_JOINTS
    for j, p in enumerate(PARENTS):
        depth[j] = depth[p] + 1 if p >= 0 else 0
    levels = []
    for d in range(1, max(depth) + 1):
        bones = [b for b, (_, c) in enumerate(BONES) if depth[c] == d]
        levels.append(
            tuple(np.array(x) for x in zip(*[(BONES[b][0], BONES[b][1], b) for b in bones]))
        )
    return tuple(levels)


BONE_LEVELS = _bone_levels()


def _unit(offsets, fallback):
    """``offsets`` (..., 2) scaled to unit length; ``fallback`` where shorter than 1e-9."""
    norm = np.sqrt(offsets[..., :1] ** 2 + offsets[..., 1:] ** 2)
    return np.where(norm > 1e-9, offsets / np.maximum(norm, 1e-12), fallback)


_DOWN = np.array([0.0, 1.0])


def project_to_bones(
    pose: ArrayLike,
    lengths: ArrayLike,
    reference: ArrayLike | None = None,
    turn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Move joints (roots first) so every bone has its given length.

    Each child keeps its direction from its (already projected) parent; a
    degenerate direction falls back to the one in ``reference`` (else
    straight down). Bones of one depth in the forest are projected together.
    ``turn(directions (..., n, 2), bone indices (n,))`` may change the unit
    directions first (posture limits).
    """
    out = np.array(pose, dtype=np.float64)[..., :2]
    lengths = np.asarray(lengths, dtype=np.float64)
    fallback = np.broadcast_to(_DOWN, (len(BONES), 2))
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)[..., :2]
        fallback = _unit(
            tangent_offset(ref[..., _BONE_PARENTS, :], ref[..., _BONE_CHILDREN, :]), _DOWN
        )
    for parents, children, bones in BONE_LEVELS:
        origin = out[..., parents, :]
        direction = _unit(tangent_offset(origin, out[..., children, :]), fallback[..., bones, :])
        if turn is not None:
            direction = turn(direction, bones)
        out[..., children, :] = from_tangent(origin, direction * lengths[..., bones, None])
    return out


def head_yaw(pose: ArrayLike) -> np.ndarray:
    """How far the head is turned; (..., J, 2+) -> (...).

    Nose u minus the shoulders' midpoint u, wrap-aware.
    """
    pose = np.asarray(pose, np.float64)
    return wrap_u(pose[..., JOINT['nose'], 0] - shoulder_mid(pose)[..., 0])


def shoulder_mid(pose: ArrayLike) -> np.ndarray:
    """The shoulders' midpoint (..., 2), wrap-aware in u."""
    pose = np.asarray(pose, np.float64)
    ls, rs = pose[..., JOINT['left_shoulder'], :2], pose[..., JOINT['right_shoulder'], :2]
    return apply_delta(ls, 0.5 * pose_delta(ls, rs))


def unit_sphere(uv: ArrayLike) -> np.ndarray:
    """Points on the unit sphere for (u, v) in the camera frame.

    The camera frame is REP-103: x forward, y left, z up.
    """
    uv = np.asarray(uv, dtype=np.float64)
    azimuth = np.pi * (1.0 - 2.0 * uv[..., 0])
    polar = np.pi * uv[..., 1]
    return np.stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=-1
    )
