"""Absolute facilitator poses from per-joint deltas: wrap, bone-length projection and speed clamp.

``pose(t+1) = project(pose(t) + delta)`` where the projection restores the
person's bone lengths (seed 001's kinematic constraint, measured on the
sphere's tangent plane) and no joint moves more than ``max_speed`` per frame,
so rollouts of any length stay anatomically valid. An optional ``leak``
(fraction per frame) pulls toward a ``home`` pose, bounding the drift of
open-loop integration. Vectorised over leading dimensions (samples, batch).
"""
from functools import lru_cache

import numpy as np

from social_pose_diffusion.core.skeleton import apply_delta, bone_lengths, joint_distance, pose_delta, project_to_bones


@lru_cache(maxsize=32)
def _decay(n, leak):
    """Weights ``(n, n)`` of the leaky sum ``o[i] = (1 - leak) o[i-1] + x[i]``: ``(1 - leak) ** (i - j)`` for j <= i."""
    lag = np.subtract.outer(np.arange(n), np.arange(n))
    return np.where(lag >= 0, (1.0 - leak) ** np.maximum(lag, 0), 0.0)


class Integrator:
    """Integrates deltas for one person with fixed ``lengths`` (radians) and ``max_speed`` (per joint, per frame)."""

    def __init__(self, lengths, max_speed, home=None, leak=0.0):
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.max_speed = np.asarray(max_speed, dtype=np.float64)
        self.home = None if home is None else np.asarray(home, dtype=np.float64)[..., :2]
        self.leak = float(leak) if home is not None else 0.0

    @classmethod
    def for_pose(cls, pose, max_speed, leak=0.0):
        """An integrator that keeps ``pose``'s bone lengths (and leaks toward it)."""
        return cls(bone_lengths(pose), max_speed, pose, leak)

    def _pull(self, pose):
        return self.leak * pose_delta(pose, self.home) if self.leak else 0.0

    def step(self, pose, delta):
        """The pose after one frame's ``delta``: projected, speed-clamped, u in [0, 1)."""
        pose = np.asarray(pose, dtype=np.float64)[..., :2]
        delta = np.asarray(delta, dtype=np.float64) + self._pull(pose)
        norm = np.linalg.norm(delta, axis=-1, keepdims=True)
        delta = delta * np.minimum(1.0, self.max_speed[:, None] / np.maximum(norm, 1e-12))
        scale = np.ones(pose.shape[:-2] + (1, 1))
        for _ in range(4):  # projection can push a child past the clamp: shrink the whole step
            new = project_to_bones(apply_delta(pose, delta * scale), self.lengths, reference=pose)
            ratio = (joint_distance(pose, new) / self.max_speed).max(-1)[..., None, None]
            if np.all(ratio <= 1.0 + 1e-9):
                return new
            scale = np.where(ratio > 1.0, scale / ratio * 0.999, scale)
        ratio = (joint_distance(pose, new) / self.max_speed).max(-1)[..., None, None]
        return np.where(ratio > 1.0 + 1e-9, project_to_bones(pose, self.lengths), new)

    def _offsets(self, pose, deltas):
        """Cumulative clamped deltas ``(..., H, J, 2)``: ``o[i] = o[i-1] + clamp(deltas[i] + leak (home - o[i-1]))``.

        Without a clamp (the usual case) this is a linear recurrence, summed
        at once with decay weights ``(1 - leak) ** (i - j)``; if any step
        would be clamped, it is stepped frame by frame.
        """
        home = pose_delta(pose, self.home)[..., None, :, :] if self.leak else 0.0
        drive = deltas + self.leak * home
        limit = self.max_speed[:, None]
        n = deltas.shape[-3]
        offsets = np.einsum('ij,...jkl->...ikl', _decay(n, self.leak), drive)
        d = drive.copy()
        d[..., 1:, :, :] -= self.leak * offsets[..., :-1, :, :]
        if np.all(np.linalg.norm(d, axis=-1, keepdims=True) <= limit):
            return offsets
        offset = np.zeros(offsets.shape[:-3] + offsets.shape[-2:])
        for i in range(n):
            d = drive[..., i, :, :] - self.leak * offset
            norm = np.linalg.norm(d, axis=-1, keepdims=True)
            offset = offsets[..., i, :, :] = offset + d * np.minimum(1.0, limit / np.maximum(norm, 1e-12))
        return offsets

    def rollout(self, pose, deltas):
        """Poses ``(..., H, J, 2)`` after each of ``deltas`` ``(..., H, J, 2)``.

        Fast path: the clamped deltas (with the leak) are summed and every
        pose projected at once; if that breaks the speed limit anywhere, step
        frame by frame.
        """
        pose = np.asarray(pose, dtype=np.float64)[..., :2]
        deltas = np.asarray(deltas, dtype=np.float64)
        start = pose[..., None, :, :]
        out = project_to_bones(apply_delta(start, self._offsets(pose, deltas)), self.lengths, reference=start)
        path = np.concatenate([np.broadcast_to(start, out.shape[:-3] + start.shape[-3:]), out], -3)
        if np.all(joint_distance(path[..., :-1, :, :], path[..., 1:, :, :]) <= self.max_speed * (1 + 1e-9)):
            return out
        steps = []
        for i in range(deltas.shape[-3]):
            pose = self.step(pose, deltas[..., i, :, :])
            steps.append(pose)
        return np.stack(steps, -3)

    def reanchor(self, pose, observed, weight):
        """Blend ``pose`` toward an observed pose by ``weight`` in [0, 1], then project."""
        pose = np.asarray(pose, dtype=np.float64)[..., :2]
        return project_to_bones(apply_delta(pose, weight * pose_delta(pose, observed)), self.lengths, reference=pose)
