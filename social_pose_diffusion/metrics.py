"""Evaluation metrics in normalised equirect units (u wraps), on numpy arrays.

Poses are ``(..., J, 2)``; sample sets ``(N, k, H, J, 2)`` with the truth ``(N, H, J, 2)``.
"""
import numpy as np

from .skeleton import JOINT, apply_delta, bone_lengths, joint_distance, mpjpe


def one_step_mpjpe(prev_true, delta, next_true):
    """Teacher-forced MPJPE: the previous true pose moved by the predicted delta vs the next true pose."""
    return mpjpe(apply_delta(prev_true, delta), next_true)


def bone_length_error(poses, lengths):
    """Mean relative bone-length error of ``poses`` against the person's ``lengths``."""
    return float(np.mean(np.abs(bone_lengths(poses) - lengths) / np.asarray(lengths)))


def best_of_k_ade(samples, truth):
    """Mean over N of the smallest average displacement error among the k samples."""
    ade = joint_distance(samples, np.asarray(truth)[:, None]).mean((-1, -2))
    return float(ade.min(1).mean())


def diversity(samples):
    """Average pairwise distance between the k samples (APD), mean over N; 0 for k = 1."""
    k = samples.shape[1]
    if k < 2:
        return 0.0
    d = joint_distance(samples[:, :, None], samples[:, None]).mean((-1, -2))
    return float(d.sum((1, 2)).mean() / (k * (k - 1)))


def timing(seconds):
    """Mean and p95 in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    return {'mean_ms': float(ms.mean()), 'p95_ms': float(np.percentile(ms, 95))} if len(ms) else {}


def wrist_lift(poses, start):
    """Largest distance (over time) of each wrist from its ``start`` position: (..., 2) for (left, right)."""
    wrists = [JOINT['left_wrist'], JOINT['right_wrist']]
    return joint_distance(poses[..., wrists, :], np.asarray(start)[..., None, wrists, :]).max(-2)


def hand_choice(lifts, reference, raised=0.6, lowered=0.3):
    """Classify invitation gestures by wrist lift relative to the true lift ``reference``.

    ``lifts`` (N, 2) left/right. A gesture is ``left`` (or ``right``) when
    that wrist reaches ``raised`` x reference and the other stays below
    ``lowered`` x reference; ``between`` when both move beyond ``lowered``
    but neither commits (the average of the two modes); ``none`` otherwise.
    Returns the fractions, ``coverage`` = min(left, right) / (left + right + between)
    and the mean relative lift of the higher and of the lower wrist (an average of the
    two modes raises both halfway).
    """
    r = np.asarray(lifts) / np.asarray(reference).reshape(-1, 1)
    left = (r[:, 0] >= raised) & (r[:, 1] < lowered)
    right = (r[:, 1] >= raised) & (r[:, 0] < lowered)
    between = ~left & ~right & (r.min(1) >= lowered)
    n = max(len(r), 1)
    gestures = max(int(left.sum() + right.sum() + between.sum()), 1)
    return {'left': float(left.sum() / n), 'right': float(right.sum() / n), 'between': float(between.sum() / n),
            'none': float(1 - (left.sum() + right.sum() + between.sum()) / n),
            'left_of_gestures': float(left.sum() / gestures), 'right_of_gestures': float(right.sum() / gestures),
            'between_of_gestures': float(between.sum() / gestures),
            'coverage': float(min(left.sum(), right.sum()) / gestures),
            'lift_higher': float(r.max(1).mean()) if len(r) else 0.0,
            'lift_lower': float(r.min(1).mean()) if len(r) else 0.0}
