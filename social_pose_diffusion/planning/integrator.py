"""Absolute facilitator poses from per-joint deltas: wrap, bone-length projection and speed clamp.

``pose(t+1) = limit(project(pose(t) + delta))`` where the projection restores
the person's bone lengths (measured on the sphere's tangent plane), the
optional posture limits (:mod:`~social_pose_diffusion.core.posture`) keep
every link's direction within what the demonstrations did, and no joint
moves more than ``max_speed`` per frame, so rollouts of any length stay
anatomically valid. An optional ``leak`` (fraction per frame) pulls the
body's centroid toward that of a ``home`` pose, bounding the drift of
open-loop integration; it moves the whole body, never its shape, so head
turns and gestures the policy holds are not pulled back. Vectorised over
leading dimensions (samples, batch).
"""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.posture import PostureLimits
from social_pose_diffusion.core.skeleton import (
    apply_delta,
    bone_lengths,
    joint_distance,
    pose_delta,
    project_to_bones,
)
from social_pose_diffusion.observation.features import centroid


class Integrator:
    """Integrates deltas for one person with fixed ``lengths`` (radians) and ``max_speed``.

    ``max_speed`` is per joint, per frame.
    """

    def __init__(
        self,
        lengths: ArrayLike,
        max_speed: ArrayLike,
        home: ArrayLike | None = None,
        leak: float = 0.0,
        limits: PostureLimits | None = None,
    ):
        self.limits = limits
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.max_speed = np.asarray(max_speed, dtype=np.float64)
        self.home_centre = (
            None if home is None else centroid(np.asarray(home, dtype=np.float64)[..., :2])
        )
        self.leak = float(leak) if home is not None else 0.0

    def rehome(self, home: ArrayLike) -> None:
        """Pull toward ``home``'s centroid from now on (an integrator without a home has none)."""
        if self.home_centre is not None:
            self.home_centre = centroid(np.asarray(home, dtype=np.float64)[..., :2])

    @classmethod
    def for_pose(
        cls,
        pose: ArrayLike,
        max_speed: ArrayLike,
        leak: float = 0.0,
        limits: PostureLimits | None = None,
    ) -> 'Integrator':
        """An integrator that keeps ``pose``'s bone lengths (and pulls its centroid back to it).

        With ``limits``, start from :meth:`start`'s pose: ``pose`` turned into them.
        """
        return cls(bone_lengths(pose), max_speed, pose, leak, limits)

    @classmethod
    def for_model(
        cls, pose: ArrayLike, config, leak: float = 0.0, max_speed: ArrayLike | None = None
    ) -> 'Integrator':
        """:meth:`for_pose` with a model's posture limits (if it has them) and speed limits.

        (Or ``max_speed``.)
        """
        rows = config.posture_limits
        limits = PostureLimits.from_list(rows) if rows else None
        speed = config.max_speed if max_speed is None else max_speed
        return cls.for_pose(pose, np.asarray(speed, np.float64), leak, limits)

    def start(self, pose: ArrayLike) -> np.ndarray:
        """``pose`` within the posture limits: every pose the integrator makes stays there.

        A pose already within them is returned as it is (not even rounded).
        """
        pose = np.asarray(pose, dtype=np.float64)[..., :2]
        limited = self._project(pose, pose)
        return pose if joint_distance(pose, limited).max() < 1e-9 else limited

    def settle(self, poses: ArrayLike) -> np.ndarray:
        """``poses`` (..., J, 2) made by other means (a blend of plans) given bones and limits."""
        poses = np.asarray(poses, dtype=np.float64)[..., :2]
        return self._project(poses, poses)

    def _project(self, pose, reference):
        """``pose`` on the bones and within the limits (bones restored after the neck moved)."""
        projected = project_to_bones(pose, self.lengths, reference=reference)
        if self.limits is None:
            return projected
        limited = self.limits.apply(projected, self.lengths, projected)
        return project_to_bones(limited, self.lengths, reference=projected)

    def _pull(self, pose):
        """The leak's step for every joint ``(..., J, 2)``.

        The centroid's way home, scaled by ``leak``.
        """
        if not self.leak:
            return 0.0
        return self.leak * pose_delta(centroid(pose), self.home_centre)[..., None, :]

    def _clamp(self, delta):
        norm = np.linalg.norm(delta, axis=-1, keepdims=True)
        return delta * np.minimum(1.0, self.max_speed[:, None] / np.maximum(norm, 1e-12))

    def step(self, pose: ArrayLike, delta: ArrayLike) -> np.ndarray:
        """The pose after one frame's ``delta``: projected, speed-clamped, u in [0, 1)."""
        pose = np.asarray(pose, dtype=np.float64)[..., :2]
        move = self._clamp(np.asarray(delta, dtype=np.float64) + self._pull(pose))
        scale = np.ones(pose.shape[:-2] + (1, 1))
        for _ in range(4):  # projection can push a child past the clamp: shrink the whole step
            new = self._project(apply_delta(pose, move * scale), pose)
            ratio = (joint_distance(pose, new) / self.max_speed).max(-1)[..., None, None]
            if np.all(ratio <= 1.0 + 1e-9):
                return new
            scale = np.where(ratio > 1.0, scale / ratio * 0.999, scale)
        ratio = (joint_distance(pose, new) / self.max_speed).max(-1)[..., None, None]
        held = pose
        if self.limits is not None:  # a start pose outside the limits comes in at the speed limit
            held = apply_delta(pose, self._clamp(pose_delta(pose, new)))
        return np.where(ratio > 1.0 + 1e-9, project_to_bones(held, self.lengths), new)

    def _offsets(self, pose, deltas):
        """Cumulative clamped deltas ``(..., H, J, 2)`` from ``pose``.

        With the leak's pull at each frame.

        Without a leak and a clamp (the usual unclamped case) this is a
        cumulative sum; otherwise it is stepped frame by frame.
        """
        if not self.leak and np.all(
            np.linalg.norm(deltas, axis=-1, keepdims=True) <= self.max_speed[:, None]
        ):
            return np.cumsum(deltas, -3)
        offsets = np.empty(deltas.shape)
        offset = np.zeros(deltas.shape[:-3] + deltas.shape[-2:])
        for i in range(deltas.shape[-3]):
            current = apply_delta(pose, offset)
            offset = offsets[..., i, :, :] = offset + self._clamp(
                deltas[..., i, :, :] + self._pull(current)
            )
        return offsets

    def rollout(self, pose: ArrayLike, deltas: ArrayLike) -> np.ndarray:
        """Poses ``(..., H, J, 2)`` after each of ``deltas`` ``(..., H, J, 2)``.

        Fast path: the clamped deltas (with the leak) are summed and every
        pose projected at once; if that breaks the speed limit anywhere, step
        frame by frame.
        """
        pose = np.asarray(pose, dtype=np.float64)[..., :2]
        deltas = np.asarray(deltas, dtype=np.float64)
        start = pose[..., None, :, :]
        out = self._project(apply_delta(start, self._offsets(pose, deltas)), start)
        path = np.concatenate([np.broadcast_to(start, out.shape[:-3] + start.shape[-3:]), out], -3)
        if np.all(
            joint_distance(path[..., :-1, :, :], path[..., 1:, :, :])
            <= self.max_speed * (1 + 1e-9)
        ):
            return out
        steps = []
        for i in range(deltas.shape[-3]):
            pose = self.step(pose, deltas[..., i, :, :])
            steps.append(pose)
        return np.stack(steps, -3)

    def reanchor(self, pose: ArrayLike, observed: ArrayLike, weight: float) -> np.ndarray:
        """Blend ``pose`` toward an observed pose by ``weight`` in [0, 1], then project."""
        pose = np.asarray(pose, dtype=np.float64)[..., :2]
        return self._project(apply_delta(pose, weight * pose_delta(pose, observed)), pose)
