"""Evaluation metrics in normalised equirect units (u wraps), on numpy arrays.

Poses are ``(..., J, 2)``; sample sets ``(N, k, H, J, 2)`` with the truth ``(N, H, J, 2)``.
``weight`` arrays (broadcastable to the per-joint errors, 0 = the true joint
was not seen) mask what real recordings do not know; None scores everything.
"""

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import (
    BONES,
    JOINT,
    apply_delta,
    bone_lengths,
    joint_distance,
)

MIN_BONE = 1e-6  # radians: shorter reference bones are not scored (no division by zero)


def masked_mean(values: ArrayLike, weight: ArrayLike | None = None) -> float:
    """Mean of ``values`` weighted by ``weight`` (NaN when nothing is weighted)."""
    values = np.asarray(values, np.float64)
    if weight is None:
        return float(values.mean()) if values.size else float('nan')
    weight = np.broadcast_to(np.asarray(weight, np.float64), values.shape)
    total = weight.sum()
    return float((values * weight).sum() / total) if total > 0 else float('nan')


def masked_mpjpe(pred: ArrayLike, true: ArrayLike, weight: ArrayLike | None = None) -> float:
    """MPJPE over the weighted (seen) joints."""
    return masked_mean(joint_distance(pred, true), weight)


def one_step_mpjpe(
    prev_true: ArrayLike, delta: ArrayLike, next_true: ArrayLike, weight: ArrayLike | None = None
) -> float:
    """Teacher-forced MPJPE.

    The previous true pose moved by the predicted delta vs the next true pose.
    """
    return masked_mpjpe(apply_delta(prev_true, delta), next_true, weight)


def bone_length_error(
    poses: ArrayLike, lengths: ArrayLike, weight: ArrayLike | None = None
) -> float:
    """Mean relative bone-length error of ``poses`` (..., J, 2) against ``lengths``.

    ``weight`` (..., bones).

    Bones shorter than :data:`MIN_BONE` in ``lengths`` are not scored.
    """
    lengths = np.asarray(lengths, np.float64)
    ok = lengths > MIN_BONE
    rel = np.abs(bone_lengths(poses) - lengths) / np.maximum(lengths, MIN_BONE)
    w = np.broadcast_to(ok, rel.shape) * (
        1.0 if weight is None else np.asarray(weight, np.float64)
    )
    return masked_mean(rel, w)


def bone_weight(keypoints: ArrayLike, seen: float = 0.5) -> np.ndarray:
    """(..., bones) 1 where both ends of a bone are confidently seen in ``keypoints``.

    ``keypoints``: (..., J, 3).
    """
    conf = np.asarray(keypoints)[..., 2]
    return np.stack([np.minimum(conf[..., p], conf[..., c]) >= seen for p, c in BONES], -1).astype(
        np.float64
    )


def best_of_k_ade(samples: ArrayLike, truth: ArrayLike, weight: ArrayLike | None = None) -> float:
    """Mean over N of the smallest average displacement error among the k samples.

    Only seen joints are scored.
    """
    d = joint_distance(samples, np.asarray(truth)[:, None])
    if weight is None:
        ade = d.mean((-1, -2))
    else:
        w = np.asarray(weight, np.float64)[:, None]
        ade = (d * w).sum((-1, -2)) / np.maximum(w.sum((-1, -2)), 1e-12)
    return float(ade.min(1).mean())


def diversity(samples: np.ndarray) -> float:
    """Average pairwise distance between the k samples (APD), mean over N; 0 for k = 1."""
    k = samples.shape[1]
    if k < 2:
        return 0.0
    d = joint_distance(samples[:, :, None], samples[:, None]).mean((-1, -2))
    return float(d.sum((1, 2)).mean() / (k * (k - 1)))


def timing(seconds: ArrayLike) -> dict:
    """Mean and p95 in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    return {'mean_ms': float(ms.mean()), 'p95_ms': float(np.percentile(ms, 95))} if len(ms) else {}


def wrist_lift(poses: np.ndarray, start: ArrayLike) -> np.ndarray:
    """Largest distance (over time) of each wrist from its ``start`` position.

    Shape (..., 2) for (left, right).
    """
    wrists = [JOINT['left_wrist'], JOINT['right_wrist']]
    return joint_distance(poses[..., wrists, :], np.asarray(start)[..., None, wrists, :]).max(-2)


def hand_choice(
    lifts: ArrayLike,
    reference: ArrayLike,
    onset: ArrayLike,
    gesture: float = 0.3,
    commit: float = 3.0,
) -> dict:
    """Classify sampled invitation gestures by wrist lift relative to the true lift ``reference``.

    ``lifts`` (N, 2) left/right wrist lift of N samples, ``onset`` (N,) which
    observation each sample was drawn for. A sample gestures when its higher
    wrist reaches ``gesture`` x reference; it is ``left`` (``right``) when that
    wrist lifts at least ``commit`` times as far as the other, else
    ``between`` (both wrists raised: an average of the two modes). Returns the
    gesture rate, the shares of left/right/between among gestures, and
    ``both_hands``: the fraction of observations whose samples include a
    left and a right gesture (a deterministic policy scores 0).
    """
    r = np.asarray(lifts, np.float64) / np.asarray(reference, np.float64).reshape(-1, 1)
    onset = np.asarray(onset)
    moved = r.max(1) >= gesture
    left = moved & (r[:, 0] >= commit * r[:, 1])
    right = moved & (r[:, 1] >= commit * r[:, 0])
    between = moved & ~left & ~right
    n = max(int(moved.sum()), 1)
    groups = np.unique(onset)
    both = [left[onset == g].any() and right[onset == g].any() for g in groups]
    return {
        'samples': int(len(r)),
        'gesture_rate': float(moved.mean()) if len(r) else 0.0,
        'left': float(left.sum() / n),
        'right': float(right.sum() / n),
        'between': float(between.sum() / n),
        'both_hands': float(np.mean(both)) if len(groups) else 0.0,
    }
