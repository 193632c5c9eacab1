"""Posture limits: the range of directions each link of the body took in the demonstrations.

Bone lengths alone leave the skeleton free to rotate: integrated closed
loop, a policy's small errors tilted the torso past horizontal and let the
head (the nose is a root, not joined to the shoulders by a bone) float a
quarter of the panorama away from the body. Joint limits, as a robot
arm has, bound that drift to postures the person actually took.

A *link* is a bone (parent -> child, see :data:`~.skeleton.BONES`) or the
neck: the nose seen from the shoulders' midpoint, whose length also varies
(a nod, a turn) and is limited too. A link's limits are the angle range of
its direction on the tangent plane (about a centre angle, wrap-aware) and,
for the neck, a length range; both span every training frame, widened by a
margin, so every demonstrated posture stays reachable (a rare hand raise is
exactly what must not be clipped).
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import (
    BONES,
    JOINT,
    apply_delta,
    bone_lengths,
    bone_offsets,
    from_tangent,
    pose_delta,
    project_to_bones,
    shoulder_mid,
    tangent_offset,
)

HEAD = [0, 1, 2, 3, 4]  # nose, eyes, ears: moved together when the neck is limited
ANGLE_MARGIN = 0.15  # rad widened on each side of a link's angle range
LENGTH_MARGIN = 0.15  # share of the neck's length range widened on each side


def _wrap_angle(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def link_offsets(pose: ArrayLike) -> np.ndarray:
    """Tangent offsets (..., B + 1, 2) of every bone's child from its parent, then the neck's."""
    pose = np.asarray(pose, np.float64)[..., :2]
    neck = tangent_offset(shoulder_mid(pose), pose[..., JOINT['nose'], :])
    return np.concatenate([bone_offsets(pose), neck[..., None, :]], -2)


@dataclass
class PostureLimits:
    """Per link: ``centre`` angle and ``low``/``high`` deviations from it (rad); neck lengths."""

    centre: np.ndarray  # (B + 1,)
    low: np.ndarray  # (B + 1,)
    high: np.ndarray  # (B + 1,)
    neck_length: tuple[float, float]

    @classmethod
    def fit(cls, poses: ArrayLike, seen: ArrayLike | None = None) -> 'PostureLimits':
        """The limits of the postures ``poses`` (N, J, 2|3) took, widened by the margins.

        ``seen`` (N, J) marks the joints that were seen; a link is fitted on the frames
        that see both its ends, and one never seen is not limited.
        """
        poses = np.asarray(poses, np.float64).reshape(-1, *np.shape(poses)[-2:])
        seen = np.ones(poses.shape[:2], bool) if seen is None else np.asarray(seen, bool)
        ends = [(seen[:, p], seen[:, c]) for p, c in BONES]
        neck = seen[:, [JOINT['left_shoulder'], JOINT['right_shoulder'], JOINT['nose']]]
        both = np.stack([a & b for a, b in ends] + [neck.all(-1)], -1)  # (N, B + 1)
        offsets = link_offsets(poses)
        angles = np.arctan2(offsets[..., 1], offsets[..., 0])
        centre, low, high = (
            np.zeros(both.shape[1]),
            np.full(both.shape[1], -np.pi),
            np.full(both.shape[1], np.pi),
        )
        for link in np.flatnonzero(both.any(0)):
            a = angles[both[:, link], link]
            centre[link] = np.angle(np.exp(1j * a).mean())
            dev = _wrap_angle(a - centre[link])
            low[link] = max(dev.min() - ANGLE_MARGIN, -np.pi)
            high[link] = min(dev.max() + ANGLE_MARGIN, np.pi)
        length = np.linalg.norm(offsets[both[:, -1], -1], axis=-1)
        if not len(length):
            return cls(centre, low, high, (0.0, 10.0))
        short, long = float(length.min()), float(length.max())
        widen = LENGTH_MARGIN * max(long - short, 0.05 * long)
        return cls(centre, low, high, (max(short - widen, 0.0), long + widen))

    def to_list(self) -> list[list[float]]:
        """JSON form: one ``[centre, low, high]`` row per link, then ``[short, long]``."""
        rows = np.stack([self.centre, self.low, self.high], -1).round(6).tolist()
        return rows + [[round(x, 6) for x in self.neck_length]]

    @classmethod
    def from_list(cls, rows: list) -> 'PostureLimits':
        table = np.asarray(rows[:-1], np.float64)
        return cls(table[:, 0], table[:, 1], table[:, 2], (float(rows[-1][0]), float(rows[-1][1])))

    def turn(self, offset: np.ndarray, links) -> np.ndarray:
        """``offset`` (..., n, 2) of ``links`` turned into their angle ranges, length kept.

        The ``turn`` hook of :func:`~.skeleton.project_to_bones`.
        """
        length = np.linalg.norm(offset, axis=-1)
        dev = _wrap_angle(np.arctan2(offset[..., 1], offset[..., 0]) - self.centre[links])
        angle = self.centre[links] + np.clip(dev, self.low[links], self.high[links])
        return np.stack([np.cos(angle), np.sin(angle)], -1) * length[..., None]

    def apply(
        self, pose: ArrayLike, lengths: ArrayLike | None = None, reference: ArrayLike | None = None
    ) -> np.ndarray:
        """``pose`` (..., J, 2) projected onto bones with every link turned into its range.

        As :func:`~.skeleton.project_to_bones` with ``lengths`` (default: the pose's
        own) and ``reference`` (default: the pose), but for the head's bones: the neck is
        limited last, moving the head rigidly in (u, v), which changes the tangent
        lengths of its small bones by a fraction of a percent (the integrator
        projects them back).
        """
        pose = np.asarray(pose, np.float64)[..., :2]
        lengths = bone_lengths(pose) if lengths is None else lengths
        reference = pose if reference is None else reference
        return self.neck(project_to_bones(pose, lengths, reference=reference, turn=self.turn))

    def neck(self, pose: np.ndarray) -> np.ndarray:
        """``pose`` with the head moved rigidly so the neck is within its angles and lengths."""
        mid = shoulder_mid(pose)
        offset = tangent_offset(mid, pose[..., JOINT['nose'], :])
        neck = len(self.centre) - 1
        turned = self.turn(offset[..., None, :], [neck])[..., 0, :]
        length = np.linalg.norm(turned, axis=-1, keepdims=True)
        short, long = self.neck_length
        turned = turned * np.clip(length, short, long) / np.maximum(length, 1e-12)
        move = pose_delta(pose[..., JOINT['nose'], :], from_tangent(mid, turned))
        pose = pose.copy()
        pose[..., HEAD, :] = apply_delta(pose[..., HEAD, :], move[..., None, :])
        return pose
